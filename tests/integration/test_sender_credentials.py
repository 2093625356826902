"""The sender's Authorization headers against a real OAuth 2.0 token server over HTTPS."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from tests.support import free_port
from tests.support.receivers import HttpsReceiver, Received, Reply, TestPki
from tests.support.token_server import TokenServer
from webhooks.v1 import common_pb2
from webhooks_sender.credentials import (
    Credentials,
    CredentialsUnusable,
    TokenFailure,
    refreshable,
)

CLIENT_ID = "sender-client"
CLIENT_SECRET = "cs-9f8e7d6c5b4a-secret"
USER, PASSWORD = "alice", "wonder-land-pw-31"
SCOPE = "hooks.write hooks.read"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(Path(tmp_path_factory.mktemp("credentials-pki")))


@pytest.fixture
async def client(pki: TestPki) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=pki.client_context()) as http:
        yield http


@pytest.fixture
async def tokens(pki: TestPki) -> AsyncIterator[TokenServer]:
    server = TokenServer(
        pki,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=SCOPE,
        users={USER: PASSWORD},
    )
    async with server:
        yield server


@pytest.fixture
async def receiver(pki: TestPki) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(pki) as server:
        yield server


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def credentials(http: httpx.AsyncClient, **options: float | str | int) -> Credentials:
    return Credentials(lambda: http, failure_backoff_seconds=0.0, **options)  # type: ignore[arg-type]


def client_credentials(
    server: TokenServer, *, scope: str = SCOPE, secret: str = CLIENT_SECRET
) -> common_pb2.Authentication:
    return common_pb2.Authentication(
        oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
            token_url=server.url, scope=scope, client_id=CLIENT_ID, client_secret=secret
        )
    )


def password_grant(
    server: TokenServer, *, password: str = PASSWORD, scope: str = SCOPE
) -> common_pb2.Authentication:
    return common_pb2.Authentication(
        oauth2_password=common_pb2.OAuth2PasswordCredentials(
            token_url=server.url,
            scope=scope,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            username=USER,
            password=password,
        )
    )


async def grant_header(
    creds: Credentials, subscription: str, version: int, auth: common_pb2.Authentication
) -> str:
    value = await creds.authorization(subscription, version, auth)
    assert value is not None
    return value


def form(request: Received) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


def bearer(server: TokenServer, index: int = -1) -> str:
    return f"Bearer {server.issued[index]}"


async def failure(call: object) -> TokenFailure:
    with pytest.raises(TokenFailure) as raised:
        await call  # type: ignore[misc]
    return raised.value


# -- static credentials


async def test_no_authentication(client: httpx.AsyncClient) -> None:
    creds = credentials(client)
    assert await creds.authorization("s", 1, common_pb2.Authentication()) is None
    none = common_pb2.Authentication(none=common_pb2.NoAuthentication())
    assert await creds.authorization("s", 1, none) is None
    assert not refreshable(none)


async def test_basic_header_is_exact_utf8(client: httpx.AsyncClient) -> None:
    auth = common_pb2.Authentication(
        basic=common_pb2.BasicAuth(username="zoë", password="pä:ss wörd")
    )
    header = await credentials(client).authorization("s", 1, auth)
    assert header == "Basic em/Dqzpww6Q6c3Mgd8O2cmQ="
    assert base64.b64decode(header.split(" ")[1]).decode() == "zoë:pä:ss wörd"
    assert not refreshable(auth)


async def test_access_token_with_custom_and_default_prefix(client: httpx.AsyncClient) -> None:
    creds = credentials(client)
    custom = common_pb2.Authentication(
        oauth2_access_token=common_pb2.OAuth2AccessToken(
            header_prefix="Token", access_token="at-123.abc"
        )
    )
    assert await creds.authorization("s", 1, custom) == "Token at-123.abc"
    default = common_pb2.Authentication(
        oauth2_access_token=common_pb2.OAuth2AccessToken(access_token="at-456")
    )
    assert await creds.authorization("s", 1, default) == "Bearer at-456"
    assert not refreshable(default)


async def test_empty_required_secrets_are_unusable(client: httpx.AsyncClient) -> None:
    creds = credentials(client)
    for auth in (
        common_pb2.Authentication(basic=common_pb2.BasicAuth(username="u")),
        common_pb2.Authentication(oauth2_access_token=common_pb2.OAuth2AccessToken()),
        common_pb2.Authentication(
            oauth2_password=common_pb2.OAuth2PasswordCredentials(
                token_url="https://127.0.0.1/token", client_id="c", username="u"
            )
        ),
    ):
        with pytest.raises(CredentialsUnusable, match="empty"):
            await creds.authorization("s", 1, auth)


# -- grants


async def test_client_credentials_checked_by_the_token_server(
    client: httpx.AsyncClient, tokens: TokenServer, receiver: HttpsReceiver
) -> None:
    auth = client_credentials(tokens)
    assert refreshable(auth)
    header = await grant_header(credentials(client), "sub-cc", 1, auth)
    assert tokens.requests == 1
    assert header == bearer(tokens)
    request = tokens.received[0]
    expected_basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_basic}"
    assert form(request) == {"grant_type": "client_credentials", "scope": SCOPE}
    # The token is accepted by a receiver that checks it with the token server.
    receiver.reply("/hook", tokens.protected())
    sent = await client.post(receiver.url("/hook"), headers={"Authorization": header})
    assert sent.status_code == 204
    refused = await client.post(receiver.url("/hook"), headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401


async def test_client_secret_post(pki: TestPki, client: httpx.AsyncClient) -> None:
    async with TokenServer(
        pki, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, auth_method="client_secret_post"
    ) as server:
        creds = credentials(client, token_endpoint_auth_method="client_secret_post")
        header = await grant_header(creds, "sub-post", 1, client_credentials(server, scope=""))
        assert header == bearer(server)
        request = server.received[0]
        assert "authorization" not in request.headers
        assert form(request) == {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        # The default (client_secret_basic) is refused by this server.
        refused = await failure(
            credentials(client).authorization("other", 1, client_credentials(server))
        )
        assert refused.status == 400


async def test_password_grant_checked_by_the_token_server(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    header = await grant_header(credentials(client), "sub-pw", 1, password_grant(tokens))
    assert header == bearer(tokens)
    request = tokens.received[0]
    assert form(request) == {
        "grant_type": "password",
        "scope": SCOPE,
        "username": USER,
        "password": PASSWORD,
    }
    assert request.headers["authorization"].startswith("Basic ")
    issued = tokens.tokens[tokens.issued[0]]
    assert (issued.grant_type, issued.username, issued.scope) == ("password", USER, SCOPE)


async def test_wrong_password_scope_or_secret_fail_without_leaking(
    client: httpx.AsyncClient, tokens: TokenServer, logs: pytest.LogCaptureFixture
) -> None:
    creds = credentials(client)
    wrong_password = "not-the-pw-77"
    bad = await failure(
        creds.authorization("a", 1, password_grant(tokens, password=wrong_password))
    )
    assert (bad.status, bad.error) == (400, "invalid_grant")
    assert bad.message.startswith("token endpoint 127.0.0.1 answered HTTP 400 invalid_grant")
    bad = await failure(creds.authorization("b", 1, client_credentials(tokens, scope="admin")))
    assert (bad.status, bad.error) == (400, "invalid_scope")
    wrong_secret = "cs-wrong-0000"
    bad = await failure(
        creds.authorization("c", 1, client_credentials(tokens, secret=wrong_secret))
    )
    assert (bad.status, bad.error) == (401, "invalid_client")
    assert "invalid_client" in str(bad)
    assert tokens.issued == []
    for text in (str(bad), bad.message, logs.text):
        for secret in (wrong_password, wrong_secret, PASSWORD, CLIENT_SECRET):
            assert secret not in text
    assert "invalid_client" in logs.text


# -- caching, single flight, expiry


async def test_hundred_concurrent_calls_make_one_token_request(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    tokens.delay = 0.2  # every caller arrives while the request is in flight
    creds = credentials(client)
    auth = client_credentials(tokens)
    headers = await asyncio.gather(*(creds.authorization("sub", 1, auth) for _ in range(100)))
    assert tokens.requests == 1
    assert set(headers) == {bearer(tokens)}
    # Cached afterwards.
    assert await grant_header(creds, "sub", 1, auth) == bearer(tokens)
    assert tokens.requests == 1
    # Another subscription with the same settings has its own token.
    assert await grant_header(creds, "other", 1, auth) == bearer(tokens)
    assert tokens.requests == 2


async def test_cancelled_caller_does_not_cancel_the_request(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    tokens.delay = 0.3
    creds = credentials(client)
    auth = client_credentials(tokens)
    first = asyncio.create_task(creds.authorization("sub", 1, auth))
    await asyncio.sleep(0.05)
    others = [asyncio.create_task(creds.authorization("sub", 1, auth)) for _ in range(10)]
    await asyncio.sleep(0.05)
    first.cancel()
    assert set(await asyncio.gather(*others)) == {bearer(tokens)}
    assert first.cancelled()
    assert tokens.requests == 1


async def test_expiry_refreshes(client: httpx.AsyncClient, tokens: TokenServer) -> None:
    tokens.expires_in = 1
    creds = credentials(client, refresh_margin_seconds=0.0)
    auth = client_credentials(tokens)
    first = await grant_header(creds, "sub", 1, auth)
    assert await grant_header(creds, "sub", 1, auth) == first
    await asyncio.sleep(1.1)
    assert not tokens.is_valid(first.split(" ")[1])
    second = await grant_header(creds, "sub", 1, auth)
    assert second != first
    assert second == bearer(tokens)
    assert tokens.requests == 2


async def test_refresh_margin_and_its_cap(client: httpx.AsyncClient, tokens: TokenServer) -> None:
    auth = client_credentials(tokens)
    # 2 s token, 0.8 s margin: refreshed after 1.2 s, before the token expires.
    tokens.expires_in = 2
    creds = credentials(client, refresh_margin_seconds=0.8)
    first = await grant_header(creds, "sub", 1, auth)
    await asyncio.sleep(1.0)
    assert await grant_header(creds, "sub", 1, auth) == first
    await asyncio.sleep(0.3)
    assert tokens.is_valid(first.split(" ")[1])
    assert await grant_header(creds, "sub", 1, auth) != first
    assert tokens.requests == 2
    # 2 s token, 30 s margin: the margin is capped at half the lifetime, so it is reused.
    tokens.expires_in = 2
    creds = credentials(client, refresh_margin_seconds=30.0)
    first = await grant_header(creds, "capped", 1, auth)
    assert await grant_header(creds, "capped", 1, auth) == first
    assert tokens.requests == 3
    await asyncio.sleep(1.1)
    assert await grant_header(creds, "capped", 1, auth) != first
    assert tokens.requests == 4


async def test_no_expires_in_uses_the_default_lifetime(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    tokens.expires_in = None
    auth = client_credentials(tokens)
    creds = credentials(client, default_lifetime_seconds=0.5, refresh_margin_seconds=0.0)
    first = await grant_header(creds, "sub", 1, auth)
    assert await grant_header(creds, "sub", 1, auth) == first
    await asyncio.sleep(0.6)
    assert await grant_header(creds, "sub", 1, auth) != first
    assert tokens.requests == 2


async def test_token_type_is_the_prefix(pki: TestPki, client: httpx.AsyncClient) -> None:
    for token_type, prefix in (("bearer", "Bearer"), ("BEARER", "Bearer"), ("DPoP", "DPoP")):
        async with TokenServer(
            pki, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_type=token_type
        ) as server:
            header = await grant_header(credentials(client), "s", 1, client_credentials(server))
            assert header == f"{prefix} {server.issued[0]}"


async def test_version_bump_fetches_a_new_token(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    creds = credentials(client)
    first = await grant_header(creds, "sub", 1, client_credentials(tokens))
    tokens.client_secret = "rotated-client-secret-2"
    changed = client_credentials(tokens, secret="rotated-client-secret-2")
    second = await grant_header(creds, "sub", 2, changed)
    assert second != first
    assert second == bearer(tokens)
    assert await grant_header(creds, "sub", 2, changed) == second
    assert tokens.requests == 2


async def test_cache_is_bounded(client: httpx.AsyncClient, tokens: TokenServer) -> None:
    creds = credentials(client, max_subscriptions=2)
    auth = client_credentials(tokens)
    for sub in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
        await grant_header(creds, sub, 1, auth)
    assert tokens.requests == 3
    await grant_header(creds, "a", 1, auth)
    await grant_header(creds, "c", 1, auth)
    assert tokens.requests == 3
    await grant_header(creds, "b", 1, auth)
    assert tokens.requests == 4


# -- invalidation after a 401


async def test_invalidate_after_401_fetches_a_new_token(
    client: httpx.AsyncClient, tokens: TokenServer, receiver: HttpsReceiver
) -> None:
    receiver.reply("/hook", tokens.protected())
    creds = credentials(client)
    auth = client_credentials(tokens)
    header = await grant_header(creds, "sub", 1, auth)
    tokens.revoke()
    sent = await client.post(receiver.url("/hook"), headers={"Authorization": header})
    assert sent.status_code == 401
    # A 401 for a token that is no longer cached, or for another version, changes nothing.
    creds.invalidate("sub", 1, "Bearer some-older-token")
    creds.invalidate("sub", 2, header)
    assert await grant_header(creds, "sub", 1, auth) == header
    assert tokens.requests == 1
    creds.invalidate("sub", 1, header)
    fresh = await grant_header(creds, "sub", 1, auth)
    assert fresh != header
    assert tokens.requests == 2
    sent = await client.post(receiver.url("/hook"), headers={"Authorization": fresh})
    assert sent.status_code == 204


async def test_hundred_concurrent_401s_cause_one_refresh(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    creds = credentials(client)
    auth = client_credentials(tokens)
    old = await grant_header(creds, "sub", 1, auth)
    tokens.revoke()
    tokens.delay = 0.1

    async def after_401() -> str:
        await asyncio.sleep(0)  # interleave the callers
        creds.invalidate("sub", 1, old)
        return await grant_header(creds, "sub", 1, auth)

    headers = await asyncio.gather(*(after_401() for _ in range(100)))
    assert tokens.requests == 2
    assert set(headers) == {bearer(tokens)} != {old}
    # A late 401 for the old token does not drop the new one.
    creds.invalidate("sub", 1, old)
    assert await grant_header(creds, "sub", 1, auth) == bearer(tokens)
    assert tokens.requests == 2


async def test_static_credentials_ignore_invalidate(client: httpx.AsyncClient) -> None:
    creds = credentials(client)
    auth = common_pb2.Authentication(
        oauth2_access_token=common_pb2.OAuth2AccessToken(access_token="static")
    )
    header = await grant_header(creds, "sub", 1, auth)
    assert header is not None
    creds.invalidate("sub", 1, header)
    assert await grant_header(creds, "sub", 1, auth) == header


# -- token endpoint failures


@pytest.mark.parametrize(
    ("reply", "status", "error", "says"),
    [
        (TokenServer.server_error(500), 500, None, "answered HTTP 500 with an error"),
        (TokenServer.server_error(503), 503, None, "answered HTTP 503 with an error"),
        (
            TokenServer.oauth_error("invalid_client", 401, f"bad secret {CLIENT_SECRET}"),
            401,
            "invalid_client",
            "answered HTTP 401 invalid_client: bad secret ***",
        ),
        (
            Reply(200, b'{"error": "access_denied"}', {"Content-Type": "application/json"}),
            200,
            "access_denied",
            "answered HTTP 200 access_denied",
        ),
        (
            Reply(200, b'{"token_type": "Bearer"}', {"Content-Type": "application/json"}),
            200,
            None,
            "answered HTTP 200 without access_token",
        ),
        (Reply(200, b"<html>ok</html>"), 200, None, "a response that is not JSON"),
        (
            Reply(200, b'{"access_token": "a b"}', {"Content-Type": "application/json"}),
            200,
            None,
            "cannot be sent in a header",
        ),
    ],
)
async def test_token_endpoint_failures(
    client: httpx.AsyncClient,
    tokens: TokenServer,
    logs: pytest.LogCaptureFixture,
    reply: Reply,
    status: int,
    error: str | None,
    says: str,
) -> None:
    creds = credentials(client)
    auth = password_grant(tokens)
    tokens.fail(reply)
    raised = await failure(creds.authorization("sub", 1, auth))
    assert raised.message == str(raised)
    assert raised.message.startswith("token endpoint 127.0.0.1 ")
    assert says in raised.message
    assert "\n" not in raised.message
    assert (raised.status, raised.error) == (status, error)
    for secret in (CLIENT_SECRET, PASSWORD):
        assert secret not in raised.message
        assert secret not in logs.text
    # Not cached as a success: the next call asks again and gets a token once it works.
    tokens.fail(None)
    assert await grant_header(creds, "sub", 1, auth) == bearer(tokens)
    assert tokens.requests == 2


async def test_slow_token_endpoint_times_out(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    tokens.delay = 1.0
    creds = credentials(client, timeout_seconds=0.2)
    raised = await failure(creds.authorization("sub", 1, client_credentials(tokens)))
    assert raised.message == "token endpoint 127.0.0.1 did not answer within 0.2 s"
    assert raised.status is None


async def test_unreachable_token_endpoint(client: httpx.AsyncClient) -> None:
    auth = common_pb2.Authentication(
        oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
            token_url=f"https://127.0.0.1:{free_port()}/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
    )
    raised = await failure(credentials(client).authorization("sub", 1, auth))
    assert raised.message.startswith("token endpoint 127.0.0.1 unreachable (ConnectError")
    assert CLIENT_SECRET not in raised.message
    assert isinstance(raised.__cause__, httpx.ConnectError)


async def test_untrusted_token_endpoint(tokens: TokenServer) -> None:
    """TLS is verified: a client that does not trust the test CA gets no token."""
    async with httpx.AsyncClient() as untrusting:
        raised = await failure(
            credentials(untrusting).authorization("sub", 1, client_credentials(tokens))
        )
    assert "unreachable" in raised.message
    assert "CERTIFICATE_VERIFY_FAILED" in raised.message
    assert tokens.requests == 0


async def test_concurrent_callers_share_one_failure(
    client: httpx.AsyncClient, tokens: TokenServer
) -> None:
    tokens.fail(TokenServer.oauth_error("invalid_client", 401))
    tokens.delay = 0.1
    creds = credentials(client)
    auth = client_credentials(tokens)
    outcomes = await asyncio.gather(
        *(creds.authorization("sub", 1, auth) for _ in range(100)), return_exceptions=True
    )
    assert tokens.requests == 1
    assert all(isinstance(o, TokenFailure) and o.error == "invalid_client" for o in outcomes)
    assert len({id(o) for o in outcomes}) == 100  # each caller raises its own exception


async def test_failure_backoff(client: httpx.AsyncClient, tokens: TokenServer) -> None:
    tokens.fail(TokenServer.server_error())
    creds = Credentials(lambda: client, failure_backoff_seconds=0.5)
    auth = client_credentials(tokens)
    first = await failure(creds.authorization("sub", 1, auth))
    tokens.fail(None)
    again = await failure(creds.authorization("sub", 1, auth))
    assert again.message == first.message
    assert tokens.requests == 1  # remembered, not asked again
    await asyncio.sleep(0.6)
    assert await grant_header(creds, "sub", 1, auth) == bearer(tokens)
    assert tokens.requests == 2
