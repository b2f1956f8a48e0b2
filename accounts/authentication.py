"""DRF authentication by ``Authorization: Token <key>`` against accounts.ApiToken."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.tokens import TokenInvalid, token_for_key


class ApiTokenAuthentication(BaseAuthentication):
    """Same header as DRF's TokenAuthentication; ``request.auth`` is the ApiToken, so the logout
    endpoint knows which token to revoke."""

    keyword = "Token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: use 'Authorization: Token <key>'.", "token_invalid")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.", "token_invalid") from None
        try:
            token = token_for_key(key)
        except TokenInvalid as exc:
            raise exceptions.AuthenticationFailed(exc.message, exc.code) from None
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes ApiTokenAuthentication in the OpenAPI schema (same name as DRF's token scheme)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=self.target.keyword)
