"""Secret redaction for any text on its way to a language model.

`redact(text)` replaces credentials with `[REDACTED:kind]` and keeps what names them visible:
`password=[REDACTED:password]`, `postgres://app:[REDACTED:password]@db:5432/orders`,
`Authorization: Bearer [REDACTED:bearer_token]`. `redact_value(obj)` does the same through
dicts, lists and tuples (e.g. pydantic `model_dump()` output) and also redacts the whole value
of a key that names a secret (`{"password": "hunter2"}`).

What is found, in this order:
1. PEM private key blocks;
2. `Authorization` headers (Bearer, Basic, Token or any other scheme), bare long `Bearer` tokens
   and `Cookie` headers;
3. credentials inside URLs (postgres://, mongodb+srv://, redis://:pass@, amqp://, https://...);
4. provider tokens by their shape: Anthropic, OpenAI, Stripe, GitHub, GitLab, Slack, Google API
   keys, AWS access key ids, JWTs;
5. assignments to keys that name a secret (`*password`, `*secret`, `*token`, `*api_key`, ...)
   written as `key=value` anywhere, `"key": "value"` (JSON, Python reprs) anywhere, and
   `key: value` at the start of a line (YAML, HTTP headers).

Left alone on purpose, because they help an investigation and are not credentials: IP
addresses (private or not), UUIDs, git shas and other hex digests, timestamps, file paths,
hosts and ports of URLs without credentials, and keys that only contain a secret word
(`token_count=5`, `max_tokens=100`, `secret_name=db-creds`, `password_changed=true`). An AWS
secret key is only found as the value of a key such as `aws_secret_access_key`: alone it
cannot be told from any other 40-character base64 string. Booleans and null as values of a
secret key are kept (`require_password=true`).

Redaction is idempotent: it runs its rules until the text stops changing, and no rule matches
inside a marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

_MARK = "[REDACTED:"
_NOT_MARKED = r"(?!\[REDACTED:)"
_MAX_PASSES = 4


def _marker(kind: str) -> str:
    return f"{_MARK}{kind}]"


# --------------------------------------------------------------------------- key names

# A key names a secret when it ends with one of these words; `token_count` does not.
_SECRET_WORD = (
    r"(?:passw(?:or)?d|passphrase|pwd|secrets?|credentials?|token|"
    r"(?:api|access|secret|private|signing|encryption|master|client)[_-]?key|apikey|cookie)"
)
_KEY = r"[A-Za-z0-9_.\-]*?" + _SECRET_WORD
_SECRET_KEY = re.compile(r"^" + _KEY + r"$", re.IGNORECASE)
_HEADER_KEY = re.compile(r"^(?:proxy-)?authorization$", re.IGNORECASE)
_KEPT_VALUES = frozenset({"true", "false", "null", "none", "nil", ""})


def _kind_for_key(key: str) -> str:
    lowered = key.lower()
    if re.search(r"passw(?:or)?d|passphrase|pwd", lowered):
        return "password"
    if "aws" in lowered and "secret" in lowered:
        return "aws_secret_key"
    if re.search(r"private[_-]?key", lowered):
        return "private_key"
    if "cookie" in lowered:
        return "cookie"
    if "secret" in lowered or "credential" in lowered:
        return "secret"
    if re.search(r"key$", lowered):
        return "api_key"
    return "token"


# --------------------------------------------------------------------------- rules

_Replace = Callable[[re.Match[str]], str]


def _keep_head(kind: str) -> _Replace:
    """Keep the `head` group, replace the rest of the match with a marker."""
    return lambda m: m.group("head") + _marker(kind)


def _whole(kind: str) -> _Replace:
    return lambda m: _marker(kind)


_PEM = re.compile(
    r"-----BEGIN (?P<label>(?:[A-Z0-9]+ )*PRIVATE KEY)-----"
    r"(?:.*?-----END (?P=label)-----|[A-Za-z0-9+/=\s\\:,\-]*)",
    re.DOTALL,
)

_AUTH_SCHEMES = {"bearer": "bearer_token", "basic": "basic_auth", "token": "token", "bot": "token"}
# Authorization with a known scheme, anywhere (`Authorization: Bearer abc`, JSON, headers=...).
_AUTH_SCHEME = re.compile(
    r"(?P<head>\b(?:Proxy-)?Authorization[\"']?\s*[:=]\s*[\"']?"
    r"(?P<scheme>Bearer|Basic|Token|Bot)\s+)" + _NOT_MARKED + r"[A-Za-z0-9\-._~+/=:]+",
    re.IGNORECASE,
)
# Authorization with another scheme (Digest, AWS4-HMAC-SHA256, ...) or none: the rest of the
# line when the header starts a line, the rest of the string when the key is quoted.
_OTHER_SCHEME = r"(?!(?:Bearer|Basic|Token|Bot)\s)" + _NOT_MARKED
_AUTH_LINE = re.compile(
    r"(?P<head>^[ \t]*(?:Proxy-)?Authorization[ \t]*:[ \t]*)" + _OTHER_SCHEME + r"[^\s][^\r\n]*",
    re.IGNORECASE | re.MULTILINE,
)
_AUTH_QUOTED = re.compile(
    r"(?P<head>(?P<kq>\\?[\"'])(?:Proxy-)?Authorization(?P=kq)[ \t]*[:=][ \t]*(?P<q>\\?[\"']))"
    + _OTHER_SCHEME
    + r"(?:(?!(?P=q))(?:\\.|[^\\\r\n]))+(?=(?P=q))",
    re.IGNORECASE,
)
# A bare bearer token: long and with a digit, so "Bearer authentication failed" stays.
_BEARER = re.compile(
    r"(?P<head>\bBearer\s+)" + _NOT_MARKED + r"(?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{16,}=*"
)
_COOKIE = re.compile(
    r"(?P<head>(?:^[ \t]*|[\"'])(?:Set-)?Cookie[\"']?\s*:\s*[\"']?)"
    + _NOT_MARKED
    + r"[^\s\"'][^\"'\r\n]*",
    re.IGNORECASE | re.MULTILINE,
)

# scheme://user:password@host -- the password must not hold `/`, so host:port/path@x stays.
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>]*:)" + _NOT_MARKED + r"[^\s@/\"'<>]+(?=@)"
)

_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("anthropic_key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}")),
    (
        "openai_key",
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{20,}"),
    ),
    (
        "stripe_key",
        re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{20,}"),
    ),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b|\bgithub_pat_\w{20,255}")),
    ("gitlab_token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}|\bxapp-\d-[A-Za-z0-9\-]{10,}")),
    (
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+"),
    ),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")),
)

# Values of keys that name a secret. Text often arrives JSON-encoded (a tool result), so a
# quote may be escaped (`password=\"abc\"`) and a line may start after a literal `\n`.
_QUOTED_VALUE = r"(?P<quote>\\?[\"'])(?P<quoted>(?:(?!(?P=quote))(?:\\.|[^\\\r\n]))*)(?P=quote)"
_ESCAPE_OK = r"|\\(?![\"'])"  # a backslash that does not escape a quote


def _bare_value(first_excluded: str, excluded: str) -> str:
    """An unquoted value: none of `excluded` (nor `first_excluded` first) nor an escaped quote."""
    first = "(?:[^\\\\" + first_excluded + "]" + _ESCAPE_OK + ")"
    rest = "(?:[^\\\\" + excluded + "]" + _ESCAPE_OK + ")*"
    return "(?P<bare>" + first + rest + ")"


# key=value anywhere (also `key = value`, `key="quoted value"`, query strings).
_ASSIGNED = re.compile(
    r"(?P<head>(?<![A-Za-z0-9_.\-])(?P<key>"
    + _KEY
    + r")[ \t]*=(?!=)[ \t]*)"
    + _NOT_MARKED
    + "(?:"
    + _QUOTED_VALUE
    + "|"
    + _bare_value(r"\s&,;\"'`{\[(<", r"\s&,;\"'`")
    + ")",
    re.IGNORECASE,
)
# "key": value anywhere, the key in quotes (JSON, Python reprs).
_QUOTED_KEY = re.compile(
    r"(?P<head>(?P<kq>\\?[\"'])(?P<key>"
    + _KEY
    + r")(?P=kq)[ \t]*:[ \t]*)"
    + _NOT_MARKED
    + "(?:"
    + _QUOTED_VALUE
    + "|"
    + _bare_value(r"\s,;\"'`{}\[\]", r"\s,;\"'`}\]")
    + ")",
    re.IGNORECASE,
)
# key: value at the start of a line (YAML, HTTP headers, env dumps, also on the added and
# removed lines of a diff); the value is the rest of the line.
_LINE_KEY = re.compile(
    r"(?P<head>^[+\-]?[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?(?P<key>"
    + _KEY
    + r")[ \t]*:[ \t]*)"
    + _NOT_MARKED
    + "(?:"
    + _QUOTED_VALUE
    + r"|(?P<bare>[^\s\"'#|>&*][^\r\n]*?)(?=[ \t]*\r?$))",
    re.IGNORECASE | re.MULTILINE,
)
# The same at the start of a quoted string (`-H 'X-Api-Key: abc'`, a JSON string value) or
# after a literal `\n` inside one; the value ends at a quote or at the next escape.
_STRING_START_KEY = re.compile(
    r"(?P<head>(?:(?<=\\n)|(?<=\\r)|(?<=[\s:\[,=(][\"'])|(?<=^[\"']))"
    r"[+\-]?[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?(?P<key>"
    + _KEY
    + r")[ \t]*:[ \t]*)"
    + _NOT_MARKED
    + r"(?P<bare>[^\s\"'\\#|>&*][^\"'\\\r\n]*?)(?=[ \t]*(?:[\\\"']|$))",
    re.IGNORECASE | re.MULTILINE,
)
_TRAILING = ")]}>.:"
# Source code in diffs and stack traces assigns expressions, not secrets: `token = get_token()`,
# `password = os.environ["DB_PASSWORD"]` (the value stops at the quote), `api_key: str = ...`.
_CODE = re.compile(
    r"^(?:(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:\([\w.]*\)?|\[)|(?:self|cls)\.[\w.]+)$"
    r"|^(?:str|bytes|int|float|bool|Any|SecretStr|SecretBytes|Optional|Union|None)\b"
    r"(?:[ \t]*[|=\[,)].*)?$"
)


def _assignment(match: re.Match[str]) -> str:
    key, head = match.group("key"), match.group("head")
    quote = match.groupdict().get("quote")
    value = match.group("quoted") if quote else match.group("bare")
    if (
        value.lower() in _KEPT_VALUES
        or value.startswith(_MARK)
        or (not quote and _CODE.match(value))
        or (key.lower() == "pwd" and value.startswith(("/", "~")))
    ):
        return match.group(0)
    mark = _marker(_kind_for_key(key))
    if quote:
        return f"{head}{quote}{mark}{quote}"
    # Closing brackets and full stops after a bare value belong to the sentence around it.
    kept = value.rstrip(_TRAILING)
    if not kept:
        return match.group(0)
    return f"{head}{mark}{value[len(kept) :]}"


_RULES: tuple[tuple[re.Pattern[str], _Replace], ...] = (
    (_PEM, _whole("private_key")),
    (_AUTH_SCHEME, lambda m: m.group("head") + _marker(_AUTH_SCHEMES[m.group("scheme").lower()])),
    (_AUTH_LINE, _keep_head("authorization")),
    (_AUTH_QUOTED, _keep_head("authorization")),
    (_BEARER, _keep_head("bearer_token")),
    (_COOKIE, _keep_head("cookie")),
    (_URL_CREDENTIALS, _keep_head("password")),
    *((pattern, _whole(kind)) for kind, pattern in _TOKENS),
    (_QUOTED_KEY, _assignment),
    (_ASSIGNED, _assignment),
    (_LINE_KEY, _assignment),
    (_STRING_START_KEY, _assignment),
)


# --------------------------------------------------------------------------- public API


def _one_pass(text: str) -> str:
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text


def redact(text: str) -> str:
    """`text` with every credential found replaced by `[REDACTED:kind]`; idempotent."""
    for _ in range(_MAX_PASSES):
        done = _one_pass(text)
        if done == text:
            break
        text = done
    return text


def _redact_secret_value(key: str, value: Any) -> Any:
    """The value of a key that names a secret: redacted as a whole."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return _marker(_kind_for_key(key))
    if isinstance(value, str):
        if value.strip().lower() in _KEPT_VALUES or value.startswith(_MARK):
            return value
        return _marker(_kind_for_key(key))
    return _redact_any(value, secret_key=key)


def _redact_header_value(value: Any) -> Any:
    if not isinstance(value, str):
        return _redact_any(value, secret_key="authorization")
    scheme, _, rest = value.strip().partition(" ")
    kind = _AUTH_SCHEMES.get(scheme.lower())
    if kind is not None and rest.strip():
        return value if rest.strip().startswith(_MARK) else f"{scheme} {_marker(kind)}"
    return value if value.startswith(_MARK) or not value.strip() else _marker("authorization")


def _redact_any(value: Any, *, secret_key: str | None = None) -> Any:
    if secret_key is not None and isinstance(value, (str, int, float)):
        return _redact_secret_value(secret_key, value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _HEADER_KEY.match(key):
                out[key] = _redact_header_value(item)
            elif isinstance(key, str) and _SECRET_KEY.match(key):
                out[key] = _redact_secret_value(key, item)
            else:
                out[key] = _redact_any(item, secret_key=secret_key)
        return out
    if isinstance(value, list):
        return [_redact_any(item, secret_key=secret_key) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact_any(item, secret_key=secret_key) for item in value)
    return value


def redact_value(value: T) -> T:
    """`value` with `redact` applied to every string inside dicts, lists and tuples, and the
    whole value of every dict key that names a secret (`password`, `api_key`, `Authorization`,
    ...) replaced. Containers are copied, never changed in place; other objects pass through.
    A number under a secret key becomes a marker string."""
    return cast(T, _redact_any(value))
