"""The kinds of endpoint authentication, the fields each has and which of them are secret.

A kind is a field of the ``Authentication`` oneof (``basic``, ``oauth2_password``, …) and
its fields are that message's; the subscriptions service validates and stores them, the
CLI turns them into flags and the console into form fields. A secret is never shown back:
the API answers ``<field>_set`` instead.
"""

from __future__ import annotations

from types import MappingProxyType

AUTH_KINDS = (
    "none",
    "basic",
    "oauth2_access_token",
    "oauth2_client_credentials",
    "oauth2_password",
)
_CLIENT_CREDENTIALS = ("token_url", "scope", "client_id", "client_secret")
# kind -> its fields, in the order forms and flags show them
AUTH_FIELDS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "none": (),
        "basic": ("username", "password"),
        "oauth2_access_token": ("header_prefix", "access_token"),
        "oauth2_client_credentials": _CLIENT_CREDENTIALS,
        "oauth2_password": (*_CLIENT_CREDENTIALS, "username", "password"),
    }
)
# Every field of any kind, once each, in the order of AUTH_FIELDS.
ALL_AUTH_FIELDS = tuple(dict.fromkeys(name for kind in AUTH_FIELDS.values() for name in kind))
SECRET_FIELDS = ("password", "access_token", "client_secret")
