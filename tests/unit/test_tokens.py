"""API tokens kept as digests (issue 11): the tokens file's two forms and the warning about
plaintext ones. The ``webhooks tokens`` commands: tests/e2e/test_data_at_rest.py."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from webhooks_config import ConfigError, load_settings
from webhooks_grpc.tokens import TokenTable, load_tokens

PLAIN = "plain-token-of-the-old-format"
DIGESTED = "a-token-whose-digest-is-stored"


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_digest_and_plaintext_entries_both_authenticate() -> None:
    table = TokenTable.from_json(
        json.dumps(
            [
                {"name": "old", "token": PLAIN, "tenant": "*"},
                {"name": "new", "token_sha256": sha256(DIGESTED), "tenant": "acme"},
            ]
        ),
        "test",
    )
    found = table.lookup(DIGESTED)
    assert found is not None and (found.name, found.tenant) == ("new", "acme")
    old = table.lookup(PLAIN)
    assert old is not None and old.plaintext
    assert table.lookup(sha256(DIGESTED)) is None  # the digest is not a token
    assert table.plaintext == 1
    stored = [entry.stored() for entry in table.entries]
    assert PLAIN not in json.dumps(stored)
    assert stored[0] == {"name": "old", "token_sha256": sha256(PLAIN), "tenant": "*"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "token_sha256": "ABC", "tenant": "*"}, "[0].token_sha256: 64 lowercase"),
        ({"name": "x", "token_sha256": sha256("t"), "token": "t", "tenant": "*"}, "not both"),
        ({"name": "x", "tenant": "*"}, "[0].token_sha256: required"),
        ({"name": "x", "token_sha256": sha256("t"), "tenant": "no spaces"}, "[0].tenant"),
        ({"token_sha256": sha256("t"), "tenant": "*"}, "[0].name: required"),
    ],
)
def test_a_malformed_entry_names_the_field(entry: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TokenTable.from_json(json.dumps([entry]), "tokens.json")


def test_plaintext_tokens_load_with_one_warning_naming_the_conversion(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tokens.json").write_text(
        json.dumps([{"name": "old", "token": PLAIN, "tenant": "*"}])
    )
    with caplog.at_level(logging.WARNING):
        table = load_tokens(load_settings({"WEBHOOKS_DATA_DIR": str(tmp_path)}))
    assert table.lookup(PLAIN) is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "webhooks tokens convert" in warnings[0]
    assert PLAIN not in warnings[0]

    caplog.clear()
    env = {"WEBHOOKS_TOKENS": json.dumps([{"name": "e", "token": PLAIN, "tenant": "*"}])}
    with caplog.at_level(logging.WARNING):
        assert load_tokens(load_settings(env)).lookup(PLAIN) is not None
    assert "WEBHOOKS_TOKENS" in caplog.text and PLAIN not in caplog.text
