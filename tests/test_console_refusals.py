"""Every console refuses a person who may not open it the same way: 403, one page saying who may, in
the page's language only, with a way to sign in as someone else."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.support.cast import make_user

REFUSALS = [
    ("/console/dispatch/", Role.CREW, "Only dispatchers may open the dispatch console.", "只有调度员可以打开调度台。"),
    ("/console/crew/", Role.DISPATCHER, "Only ambulance crews may open the crew console.", "只有急救车组可以打开车组终端。"),
    ("/console/hospital/", Role.CITIZEN, "Only hospital staff may open the admission board.", "只有医院工作人员可以打开院前接收看板。"),
    ("/console/reports/", Role.CREW, "Only a shift supervisor may open the reports.", "只有值班主任可以查看报表。"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "role", "english", "chinese"), REFUSALS)
def test_it_refuses_a_console_in_one_language_with_a_way_out(client, path, role, english, chinese):
    client.force_login(make_user(f"refused-{role}", role))
    en = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    zh = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert (en.status_code, zh.status_code) == (403, 403)
    en_html, zh_html = en.content.decode(), zh.content.decode()
    assert english in en_html and "Not allowed" in en_html and "无权访问" not in en_html
    assert english not in zh_html and "无权访问" in zh_html and chinese in zh_html
    assert f'href="/accounts/login/?next={path}"' in en_html
