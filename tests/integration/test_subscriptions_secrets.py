"""Secrets at rest: no plaintext credential, private key or signing secret in the raw bytes
of the event store, the listing, the SUBSCRIPTIONS stream's files or any response; the
stream's messages carry them sealed, and the configured key opens them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.integration.conftest import SubscriptionsService, basic_auth, rest_spec
from tests.support.certs import issue_client_certificate, make_ca, pem_body
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2
from webhooks_secrets import is_sealed

TOKEN_URL = "https://login.example.com/oauth/token"


@dataclass
class Known:
    """The plaintext secrets the test wrote, and non-secret values that must be visible."""

    secrets: dict[str, str] = field(default_factory=dict)
    visible: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    private_key_pem: str = ""


async def create_everything(service: SubscriptionsService) -> Known:
    known = Known()
    known.secrets = {
        "basic password": "basic-pw-Qm4tZr8",
        "access token": "access-token-Hx7Lp2v",
        "client secret": "client-secret-Vb3Nq9w",
        "password credentials client secret": "pc-client-secret-Ty6Rk1",
        "password credentials password": "pc-password-Jd5Ws0e",
    }
    known.visible = {
        "basic username": "basic-user-Ka1",
        "client id": "client-id-Mz2",
        "password credentials username": "pc-user-Pf3",
    }
    issued = issue_client_certificate(make_ca(), "secrets-client")
    known.private_key_pem = issued.private_key_pem
    lines = [line for line in pem_body(issued.private_key_pem).splitlines() if line]
    body = pem_body(issued.private_key_pem)
    # Every 48-character slice of the base64 body: found wherever line breaks fall.
    for start in range(0, len(body) - 48, 24):
        known.secrets[f"private key body @{start}"] = body[start : start + 48]
    assert lines
    certificate = await service.stub.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="secrets client",
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=service.acme,
    )
    known.ids["certificate"] = certificate.id
    specs = {
        "basic": rest_spec(
            "Basic",
            authentication=basic_auth(
                known.visible["basic username"], known.secrets["basic password"]
            ),
            certificate_id=certificate.id,
        ),
        "access token": rest_spec(
            "Access token",
            authentication=common_pb2.Authentication(
                oauth2_access_token=common_pb2.OAuth2AccessToken(
                    access_token=known.secrets["access token"]
                )
            ),
        ),
        "client credentials": rest_spec(
            "Client credentials",
            authentication=common_pb2.Authentication(
                oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
                    token_url=TOKEN_URL,
                    client_id=known.visible["client id"],
                    client_secret=known.secrets["client secret"],
                )
            ),
        ),
        "password credentials": rest_spec(
            "Password credentials",
            authentication=common_pb2.Authentication(
                oauth2_password=common_pb2.OAuth2PasswordCredentials(
                    token_url=TOKEN_URL,
                    client_id="pc-client",
                    client_secret=known.secrets["password credentials client secret"],
                    username=known.visible["password credentials username"],
                    password=known.secrets["password credentials password"],
                )
            ),
        ),
    }
    for kind, spec in specs.items():
        created = await service.create(spec)
        known.ids[kind] = created.subscription.id
        known.secrets[f"signing secret of {kind}"] = created.signing_secret
    rotated = await service.stub.RotateSigningSecret(
        subscriptions_pb2.RotateSigningSecretRequest(id=known.ids["basic"]),
        metadata=service.acme,
    )
    known.secrets["rotated signing secret"] = rotated.signing_secret
    return known


def sqlite_bytes(data_dir: Path) -> bytes:
    files = sorted(data_dir.glob("*.sqlite*"))
    assert any(f.name.endswith(".sqlite") for f in files), files
    return b"".join(f.read_bytes() for f in files)


def postgres_bytes(url: str, schema: str) -> bytes:
    """Every row of every table of the schema, in COPY's binary format (raw bytea)."""
    chunks: list[bytes] = []
    with psycopg.connect(url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        ]
        assert len(tables) >= 3, tables  # events, tracking, the listing tables
        for table in tables:
            query = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT (FORMAT binary)").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            with connection.cursor().copy(query) as copy:
                chunks.extend(bytes(chunk) for chunk in copy)
    return b"".join(chunks)


def stream_store_bytes(store_dir: Path) -> bytes:
    files = [p for p in store_dir.rglob("*") if p.is_file()]
    assert any("SUBSCRIPTIONS" in str(p) for p in files), files
    return b"".join(p.read_bytes() for p in sorted(files) if "SUBSCRIPTIONS" in str(p))


def leaked(raw: bytes, known: Known) -> list[str]:
    return [what for what, value in known.secrets.items() if value.encode() in raw]


async def test_no_plaintext_secret_at_rest_or_in_any_response(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    known = await create_everything(service)
    # Certificate upload, four creates, one rotation.
    messages = await service.stream_messages(6)
    assert len(messages) == 6

    if service.store == "sqlite":
        stored = await asyncio.to_thread(sqlite_bytes, service.data_dir)
    else:
        stored = await asyncio.to_thread(postgres_bytes, service.postgres_url, service.schema)
    streamed = await asyncio.to_thread(stream_store_bytes, service.nats.store_dir)
    for where, raw in (("store", stored), ("stream files", streamed)):
        # The search looks at the right bytes: what is not secret is there in plain text.
        for what, value in known.visible.items():
            assert value.encode() in raw, f"{what} not found in the {where}: wrong bytes?"
        assert leaked(raw, known) == [], where

    responses: list[bytes] = []
    for kind in ("basic", "access token", "client credentials", "password credentials"):
        subscription_id = known.ids[kind]
        responses.append((await service.get(subscription_id)).SerializeToString())
        responses.append((await service.history(subscription_id)).SerializeToString())
    responses.append((await service.list_page()).SerializeToString())
    certificates = await service.stub.ListCertificates(
        subscriptions_pb2.ListCertificatesRequest(), metadata=service.acme
    )
    responses.append(certificates.SerializeToString())
    raw_responses = b"".join(responses)
    assert known.visible["basic username"].encode() in raw_responses
    assert leaked(raw_responses, known) == []
    assert b"sealed:v1:" not in raw_responses
    assert b"PRIVATE KEY" not in raw_responses


async def test_the_stream_carries_the_secrets_sealed_for_the_sender(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    known = await create_everything(service)
    box = service.secrets
    states: dict[str, messages_pb2.SubscriptionState] = {}
    certificate: messages_pb2.CertificateState | None = None
    for message in await service.stream_messages(6):
        event = messages_pb2.SubscriptionDomainEvent.FromString(message.data or b"")
        if event.HasField("subscription"):
            states[event.subscription.id] = event.subscription
        else:
            certificate = event.certificate
    basic = states[known.ids["basic"]]
    sealed_password = basic.authentication.basic.password
    assert is_sealed(sealed_password)
    assert box.open(sealed_password) == known.secrets["basic password"]
    assert basic.authentication.basic.username == known.visible["basic username"]
    assert basic.webhook.client_certificate_id == known.ids["certificate"]
    # The rotated secret signs; the previous one stays valid for the overlap.
    assert box.open(basic.signing_secret) == known.secrets["rotated signing secret"]
    assert box.open(basic.previous_signing_secret) == known.secrets["signing secret of basic"]
    assert basic.HasField("previous_valid_until")
    token = states[known.ids["access token"]].authentication.oauth2_access_token
    assert box.open(token.access_token) == known.secrets["access token"]
    client = states[known.ids["client credentials"]].authentication.oauth2_client_credentials
    assert box.open(client.client_secret) == known.secrets["client secret"]
    password = states[known.ids["password credentials"]].authentication.oauth2_password
    assert box.open(password.client_secret) == known.secrets["password credentials client secret"]
    assert box.open(password.password) == known.secrets["password credentials password"]
    assert certificate is not None
    assert certificate.id == known.ids["certificate"]
    assert box.open(certificate.private_key) == known.private_key_pem
