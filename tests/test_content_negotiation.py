"""The API's content negotiation (config.api.ContentNegotiation) answers the plain cases at once
and must answer every case exactly as DRF's own negotiation does, refusals included."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions, renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.api import ContentNegotiation

ACCEPTS = [
    None, "*/*", "application/json", "application/json; indent=4", "text/html", "text/html, */*", "application/*",
    "text/csv", "application/json;q=0.5, text/html", "", "*/*;q=0.1", "APPLICATION/JSON", "application/json, */*",
]
QUERIES = ["", "?format=json", "?format=api", "?format=csv", "?other=1"]
RENDERER_LISTS = [
    [renderers.JSONRenderer(), renderers.BrowsableAPIRenderer()],
    [renderers.BrowsableAPIRenderer(), renderers.JSONRenderer()],
    [renderers.JSONRenderer()],
]


def answer(negotiator, request, renderer_list, suffix):
    try:
        renderer, media_type = negotiator.select_renderer(request, renderer_list, suffix)
    except exceptions.NotAcceptable as refused:
        return "406", str(refused.detail)
    except Http404:
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
def test_it_answers_as_drf_does_for_every_accept_query_and_renderer_list(accept):
    factory = APIRequestFactory()
    for query in QUERIES:
        for renderer_list in RENDERER_LISTS:
            for suffix in (None, "json", "api"):
                headers = {} if accept is None else {"HTTP_ACCEPT": accept}
                request = Request(factory.get("/api/v1/whatever" + query, **headers))
                assert answer(ContentNegotiation(), request, renderer_list, suffix) == answer(
                    DefaultContentNegotiation(), request, renderer_list, suffix
                ), (accept, query, renderer_list, suffix)


def test_it_is_the_apis_negotiation(as_dispatcher):
    json_answer = as_dispatcher.get("/api/v1/dispatch/cases", HTTP_ACCEPT="*/*")
    assert json_answer.status_code == 200
    assert json_answer["Content-Type"] == "application/json"
    refused = as_dispatcher.get("/api/v1/dispatch/cases", HTTP_ACCEPT="text/csv")
    assert refused.status_code == 406
