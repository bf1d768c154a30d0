"""Secret redaction: what is redacted, what is left alone, idempotence and nested data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agent.bundle.reader import iter_bundles, read_bundle
from agent.redact import redact, redact_value

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"

# Fake credentials are assembled at run time so that secret scanners do not flag this file.
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB_PAT = "ghp_" + _ALNUM[:36]
GITHUB_OAUTH = "gho_" + _ALNUM[:36]
GITHUB_FINE = "github_pat_" + "11ABCDEFG0123456789_" + _ALNUM * 2
SLACK_BOT = "xox" + "b-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xox" + "p-123456789012-123456789012-123456789012-" + _ALNUM[:32]
SLACK_APP = "xa" + "pp-1-A0123456789-1234567890123-" + _ALNUM[:30]
ANTHROPIC = "sk-" + "ant-api03-" + _ALNUM + "-AbC_dEf"
OPENAI = "sk-" + "proj-" + _ALNUM[::-1]
OPENAI_LEGACY = "sk-" + _ALNUM + "GHIJKL"
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AI" + "za" + "SyA1234567890abcdefghijklmnopqrstuv"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yLiX6G3A3Q==\n"
    "-----END RSA " + "PRIVATE KEY-----"
)
SLACK_HOOK = "https://hooks.slack.com/" + "services/T00000000/B00000000/" + "X" * 24

REDACTED: list[tuple[str, str]] = [
    # provider tokens, recognised by their shape
    (f"aws_access_key_id={AWS_KEY_ID}", "aws_access_key_id=[REDACTED:aws_access_key]"),
    (f"using {AWS_KEY_ID} for s3", "using [REDACTED:aws_access_key] for s3"),
    (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = [REDACTED:aws_secret_key]"),
    (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key]"),
    (f"clone with {GITHUB_PAT} failed", "clone with [REDACTED:github_token] failed"),
    (GITHUB_OAUTH, "[REDACTED:github_token]"),
    (f"GH_TOKEN={GITHUB_FINE}", "GH_TOKEN=[REDACTED:github_token]"),
    (f"slack {SLACK_BOT}", "slack [REDACTED:slack_token]"),
    (SLACK_USER, "[REDACTED:slack_token]"),
    (SLACK_APP, "[REDACTED:slack_token]"),
    (f"posting to {SLACK_HOOK}", "posting to [REDACTED:slack_webhook]"),
    (f"ANTHROPIC_API_KEY={ANTHROPIC}", "ANTHROPIC_API_KEY=[REDACTED:anthropic_key]"),
    (f"key {ANTHROPIC} rejected", "key [REDACTED:anthropic_key] rejected"),
    (f"openai {OPENAI} end", "openai [REDACTED:openai_key] end"),
    (OPENAI_LEGACY, "[REDACTED:openai_key]"),
    (f"charge with {STRIPE}", "charge with [REDACTED:stripe_key]"),
    (f"maps key={GOOGLE}&q=x", "maps key=[REDACTED:google_api_key]&q=x"),
    (f"session {JWT} expired", "session [REDACTED:jwt] expired"),
    (f"id_token={JWT}", "id_token=[REDACTED:jwt]"),
    # headers
    ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED:bearer_token]"),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED:bearer_token]"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", "authorization: Basic [REDACTED:basic_auth]"),
    (
        'headers={"Authorization": "Bearer tok3n-value"}',
        'headers={"Authorization": "Bearer [REDACTED:bearer_token]"}',
    ),
    (
        'Authorization: Digest username="bob", response="6629fae49393a05397450978507c4ef1"',
        "Authorization: [REDACTED:authorization]",
    ),
    ("Bearer abcdefghijklmnop12345 sent", "Bearer [REDACTED:bearer_token] sent"),
    ("Cookie: session=abc123; csrftoken=xyz", "Cookie: [REDACTED:cookie]"),
    ("X-Api-Key: abc123def", "X-Api-Key: [REDACTED:api_key]"),
    (
        "curl -H 'X-Api-Key: abc123def' http://svc",
        "curl -H 'X-Api-Key: [REDACTED:api_key]' http://svc",
    ),
    # private keys
    (f"key:\n{PEM}\nnext line", "key:\n[REDACTED:private_key]\nnext line"),
    (
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
        "[REDACTED:private_key]",
    ),
    # passwords and other assignments
    ("password=hunter2 user=bob", "password=[REDACTED:password] user=bob"),
    ("DB_PASSWORD=hunter2", "DB_PASSWORD=[REDACTED:password]"),
    ('password="a b c" next', 'password="[REDACTED:password]" next'),
    ("(user=bob, password=abc).", "(user=bob, password=[REDACTED:password])."),
    (
        '{"password": "hunter2", "user": "bob"}',
        '{"password": "[REDACTED:password]", "user": "bob"}',
    ),
    ("{'db_password': 'hunter2'}", "{'db_password': '[REDACTED:password]'}"),
    ('{"pin_password": 1234}', '{"pin_password": [REDACTED:password]}'),
    (
        "db:\n  user: app\n  password: hunter2\n",
        "db:\n  user: app\n  password: [REDACTED:password]\n",
    ),
    ("password: a\r\nuser: b\r\n", "password: [REDACTED:password]\r\nuser: b\r\n"),
    ('password: "a b"  # c', 'password: "[REDACTED:password]"  # c'),
    ("- password: 'x'", "- password: '[REDACTED:password]'"),
    ("+  password: hunter2", "+  password: [REDACTED:password]"),
    ("export API_TOKEN: abc", "export API_TOKEN: [REDACTED:token]"),
    (
        "api_key=abcdef123456 token=xyz secret=shh",
        "api_key=[REDACTED:api_key] token=[REDACTED:token] secret=[REDACTED:secret]",
    ),
    ("client_secret=s3cr3t", "client_secret=[REDACTED:secret]"),
    ("private_key=abc", "private_key=[REDACTED:private_key]"),
    (
        "GET /v1?access_token=abc123&page=2",
        "GET /v1?access_token=[REDACTED:token]&page=2",
    ),
    ("Server=db;Uid=sa;Pwd=s3cret;", "Server=db;Uid=sa;Pwd=[REDACTED:password];"),
    # connection strings
    (
        "postgres://app:s3cr3t@db.internal:5432/orders",
        "postgres://app:[REDACTED:password]@db.internal:5432/orders",
    ),
    (
        "mongodb+srv://admin:p4ss@cluster0.example.net/test?retryWrites=true",
        "mongodb+srv://admin:[REDACTED:password]@cluster0.example.net/test?retryWrites=true",
    ),
    ("redis://:hunter2@cache:6379/0", "redis://:[REDACTED:password]@cache:6379/0"),
    ("amqp://guest:guest@rabbit:5672/", "amqp://guest:[REDACTED:password]@rabbit:5672/"),
    ("https://user:pw@example.com/path", "https://user:[REDACTED:password]@example.com/path"),
    # JSON-encoded text (tool results are redacted after json.dumps)
    (
        json.dumps({"message": "password: hunter2"}),
        '{"message": "password: [REDACTED:password]"}',
    ),
    (
        json.dumps({"config": "db:\n  password: hunter2\n  host: x"}),
        '{"config": "db:\\n  password: [REDACTED:password]\\n  host: x"}',
    ),
    (json.dumps({"m": 'password="abc" x'}), '{"m": "password=\\"[REDACTED:password]\\" x"}'),
    (
        json.dumps({"m": '{"password": "abc"}'}),
        '{"m": "{\\"password\\": \\"[REDACTED:password]\\"}"}',
    ),
]

UNTOUCHED: list[str] = [
    # counts and names that merely contain a secret word
    "token_count=5 max_tokens=100 tokens=512 input_tokens: 7",
    "secret_name=db-creds password_changed=true",
    "require_password=true api_key=None token=null",
    "failed to refresh token: connection refused",
    "invalid password for user bob",
    "Bearer authentication failed",
    "password reset email sent",
    # identifiers that look random but help an investigation
    "request 550e8400-e29b-41d4-a716-446655440000 done",
    "commit 3f9a1c2e4b5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f deployed",
    "image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "2026-05-13T14:41:00.123Z deploy started",
    'File "/app/src/payments/api.py", line 147, in handle',
    "connect 10.0.3.4:5432 and 192.168.1.10 and 172.16.0.1 and 8.8.8.8",
    "postgres://db.internal:5432/app",
    "http://localhost:8080/health?x=1",
    "ssh://git@github.com/org/repo.git",
    "KeyError: 'CACHE_REDIS_URL' in load_settings",
    "task-abcdefghijklmnopqrstuvwxyz0123456789",
    "PoolTimeout: pool exhausted (pool_size=20, waited_ms=654, customer_id=usr_r8l99sv7)",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    # source code in diffs and stack traces
    '+    password = os.environ["DB_PASSWORD"]',
    "+    token = get_token()",
    "     api_key: str = Field(...)",
    "    secret: SecretStr | None = None",
    "if token == expected:",
    "",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_secrets_are_redacted_keeping_their_name(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redacted_json_stays_json() -> None:
    data = {"message": 'password="a\\"b" x', "url": "redis://:pw@cache:6379", "n": 3}
    parsed = json.loads(redact(json.dumps(data)))
    assert "pw@" not in parsed["url"] and "a\\" not in parsed["message"]
    assert parsed["n"] == 3


def test_log_lines_of_the_small_suite_are_left_alone() -> None:
    checked = 0
    for path in iter_bundles([SUITE]):
        bundle = read_bundle(path)
        for line in bundle.logs or ():
            for text in (line.message, *(v for v in (line.model_extra or {}).values())):
                if isinstance(text, str):
                    checked += 1
                    assert redact(text) == text
        if bundle.diff is not None:
            assert redact(bundle.diff) == bundle.diff
    assert checked > 1000


# --------------------------------------------------------------------------- idempotence

_FRAGMENTS = [s for pair in REDACTED for s in pair] + [
    "password=",
    "token: ",
    '"api_key": "',
    "://u:",
    "@h",
    "[REDACTED:",
    "]",
    "\n",
    "\\n",
    '\\"',
    "Authorization: ",
    "Bearer ",
    " ",
    "=",
    "'",
]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_redaction_is_idempotent_on_any_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=8)), max_size=12))
def test_redaction_is_idempotent_on_secret_like_text(parts: list[str]) -> None:
    text = "".join(parts)
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_redacting_redacted_text_changes_nothing(text: str, expected: str) -> None:
    assert redact(expected) == expected


# --------------------------------------------------------------------------- nested values


class _Call(BaseModel):
    url: str
    headers: dict[str, str]
    password: str
    attempts: int


def test_redact_value_walks_nested_structures_without_changing_them() -> None:
    data = {
        "password": "hunter2",
        "token_count": 5,
        "calls": [
            {"api_key": 12345, "Authorization": "Bearer abc", "note": "password=z"},
            ("token=abc", "plain"),
        ],
        "require_password": True,
        "secret": None,
        "credentials": {"user": "bob", "pass": "p4ss"},
        "Set-Cookie": "sid=1",
    }
    original = json.dumps(data)
    assert redact_value(data) == {
        "password": "[REDACTED:password]",
        "token_count": 5,
        "calls": [
            {
                "api_key": "[REDACTED:api_key]",
                "Authorization": "Bearer [REDACTED:bearer_token]",
                "note": "password=[REDACTED:password]",
            },
            ("token=[REDACTED:token]", "plain"),
        ],
        "require_password": True,
        "secret": None,
        "credentials": {"user": "[REDACTED:secret]", "pass": "[REDACTED:secret]"},
        "Set-Cookie": "[REDACTED:cookie]",
    }
    assert json.dumps(data) == original  # copied, not changed in place


def test_redact_value_on_pydantic_dumped_data() -> None:
    call = _Call(
        url="postgres://app:pw@db/x",
        headers={"Authorization": "Digest abc", "Accept": "text/plain"},
        password="hunter2",
        attempts=3,
    )
    assert redact_value(call.model_dump()) == {
        "url": "postgres://app:[REDACTED:password]@db/x",
        "headers": {"Authorization": "[REDACTED:authorization]", "Accept": "text/plain"},
        "password": "[REDACTED:password]",
        "attempts": 3,
    }


def test_redact_value_is_idempotent_and_passes_other_objects_through() -> None:
    data = {"token": "abc", "items": [{"password": "x"}], "when": 1.5}
    once = redact_value(data)
    assert redact_value(once) == once
    marker = object()
    assert redact_value(marker) is marker
    assert redact_value("api_key=abc") == "api_key=[REDACTED:api_key]"
