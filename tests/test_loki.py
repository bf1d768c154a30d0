"""LokiLogSource against a real local HTTP server speaking Loki's query API."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.backends.base import SourceUnavailable
from agent.bundle.model import LogLine
from agent.bundle.reader import read_bundle
from agent.errors import ConfigError
from tests.fakes.loki_server import FakeLoki, Fault, Stream, fake_loki, parse_query
from tests.fakes.sleeps import Sleeps
from tools import all_tools
from tools.backends.loki import LokiLogSource
from tools.base import Toolbox
from tools.bundle import bundle_context

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
NS = 10**9
T0 = 1_778_680_000  # seconds; every test's logs start here
APP = {"service": "checkout"}


def at(seconds: float) -> int:
    return round((T0 + seconds) * NS)


def loki(fake: FakeLoki | str, client: httpx.Client, **kw: Any) -> LokiLogSource:
    kw.setdefault("sleep", Sleeps())
    url = fake if isinstance(fake, str) else fake.url
    return LokiLogSource(url, client=client, **kw)


def read_all(source: LokiLogSource, **kw: Any) -> list[LogLine]:
    return source.read("checkout", T0, T0 + 3600, **kw)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# Query building


def test_queries_use_the_selector_template_and_escape_the_line_filter(
    client: httpx.Client,
) -> None:
    default = loki("http://loki:3100", client)
    assert default.build_query("checkout") == '{service="checkout"}'
    templated = loki("http://loki:3100", client, selector='{app="{service}", env="prod"}')
    assert templated.build_query("checkout") == '{app="checkout", env="prod"}'

    nasty = 'KeyError: "customer" in C:\\orders\n'
    query = default.build_query("checkout", contains=nasty)
    assert query == '{service="checkout"} |= "KeyError: \\"customer\\" in C:\\\\orders\\n"'
    # Read back as LogQL reads a Go string literal, the filter is the text asked for.
    assert parse_query(query).line_filters == (("|=", nasty),)
    # A quote in the service name cannot break out of the selector either.
    assert parse_query(default.build_query('a"b')).matchers == (("service", "=", 'a"b'),)


def test_ignore_case_sends_a_literal_case_insensitive_regex(client: httpx.Client) -> None:
    lines = [(at(1), "KeyError: 'customer' (a.b)"), (at(2), "keyerror: 'customer' (aXb)")]
    with fake_loki([Stream(APP, lines)]) as fake:
        source = loki(fake, client, ignore_case=True)
        got = read_all(source, contains="KEYERROR: 'customer' (a.b)")
        plain = read_all(loki(fake, client), contains="keyerror")
    assert [line.message for line in got] == ["KeyError: 'customer' (a.b)"]  # `.` is literal
    assert fake.queries()[0].params["query"] == (
        '{service="checkout"} |~ "(?i)KEYERROR\\\\: \\\\\'customer\\\\\' \\\\(a\\\\.b\\\\)"'
    )
    assert [line.message for line in plain] == ["keyerror: 'customer' (aXb)"]  # `|=` is exact


def test_levels_are_pushed_down_only_when_streams_carry_a_level_label(
    client: httpx.Client,
) -> None:
    plain = loki("http://loki:3100", client)
    assert plain.build_query("checkout", levels=("error",)) == '{service="checkout"}'
    labelled = loki("http://loki:3100", client, level_label="level")
    query = labelled.build_query("checkout", levels=("ERROR", "warning"))
    assert query == ('{service="checkout"} | level=~"(?i)eror|err|error|severe|warn|warning|wrn"')


def test_bad_settings_are_config_errors(client: httpx.Client) -> None:
    with pytest.raises(ConfigError, match=r"must contain \{service\}"):
        LokiLogSource("http://loki:3100", client=client, selector='{app="checkout"}')
    with pytest.raises(ConfigError, match="not both"):
        LokiLogSource("http://loki:3100", client=client, token="t", basic_auth=("u", "p"))
    with pytest.raises(ConfigError, match="base URL"):
        LokiLogSource("loki:3100", client=client)


def test_the_request_is_a_forward_range_query_in_nanoseconds(client: httpx.Client) -> None:
    lines = [(at(1.5), "one"), (at(2), "two")]
    with fake_loki([Stream(APP, lines)]) as fake:
        got = loki(fake, client).read("checkout", T0 + 1.5, T0 + 2, contains="o", limit=50)
    assert [line.message for line in got] == ["one", "two"]  # both ends inclusive
    (request,) = fake.requests
    assert request.method == "GET" and request.path == "/loki/api/v1/query_range"
    assert request.params == {
        "query": '{service="checkout"} |= "o"',
        "start": str(at(1.5)),
        "end": str(at(2) + 1),  # Loki's end is exclusive
        "limit": "50",
        "direction": "forward",
    }


# Parsing


def test_json_logfmt_and_plain_lines_become_log_lines(client: httpx.Client) -> None:
    json_line = json.dumps(
        {
            "time": "2026-01-01T00:00:00Z",  # the line's own clock: Loki's timestamp wins
            "severity": "ERROR",
            "msg": "payment failed",
            "stack_trace": "Traceback ...\nValueError: boom",
            "order": "ord_1",
        }
    )
    lines = [
        (at(1), json_line),
        (at(2), 'ts=2026-01-01T00:00:00Z level=warning msg="slow \\"db\\" call" took=2s'),
        (at(3), "2026-05-13T14:00:00Z ERROR connection reset by peer"),
        (at(4), "just some words"),
    ]
    with fake_loki([Stream({**APP, "pod": "p1"}, lines)]) as fake:
        got = read_all(loki(fake, client))
    assert [(line.level, line.message) for line in got] == [
        ("error", "payment failed"),
        ("warn", 'slow "db" call'),
        ("error", "connection reset by peer"),
        ("info", "just some words"),
    ]
    first = got[0]
    assert first.ts == datetime.fromtimestamp(T0 + 1, tz=UTC)
    assert first.service == "checkout"
    assert first.labels == {"service": "checkout", "pod": "p1"}
    extra = first.model_extra or {}
    assert extra["stack_trace"].endswith("ValueError: boom") and extra["order"] == "ord_1"
    assert (got[1].model_extra or {})["took"] == "2s"


def test_level_labels_and_structured_metadata(client: httpx.Client) -> None:
    streams = [
        Stream({**APP, "level": "warn"}, [(at(1), '{"level": "info", "msg": "label wins"}')]),
        Stream({**APP, "detected_level": "error"}, [(at(2), "no level in the line")]),
        Stream({**APP, "detected_level": "error"}, [(at(3), "DEBUG the line wins")]),
        Stream({**APP, "detected_level": "unknown"}, [(at(4), "nothing known")]),
    ]
    with fake_loki(streams) as fake:
        got = read_all(loki(fake, client))
    assert [line.level for line in got] == ["warn", "error", "debug", "info"]


def test_structured_metadata_of_a_value_is_kept_as_labels(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_loki() as fake:
        body = {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": [
                    {
                        "stream": APP,
                        "values": [[str(at(1)), "boom", {"trace_id": "abc", "level": "error"}]],
                    }
                ],
            },
        }
        fake.fail(Fault(200, json.dumps(body), content_type="application/json"))
        (line,) = read_all(loki(fake, client))
    assert line.level == "error" and line.labels == {**APP, "trace_id": "abc", "level": "error"}


def test_streams_are_merged_in_time_order(client: httpx.Client) -> None:
    streams = [
        Stream({**APP, "pod": "a"}, [(at(1), "a1"), (at(4), "a4"), (at(5), "a5")]),
        Stream({**APP, "pod": "b"}, [(at(2), "b2"), (at(3), "b3"), (at(6), "b6")]),
        Stream({"service": "other"}, [(at(2.5), "not ours")]),
    ]
    with fake_loki(streams) as fake:
        got = read_all(loki(fake, client))
    assert [line.message for line in got] == ["a1", "b2", "b3", "a4", "a5", "b6"]
    assert [line.labels["pod"] for line in got] == ["a", "b", "b", "a", "a", "b"]


def test_levels_are_filtered_even_when_loki_cannot(client: httpx.Client) -> None:
    levels = ["error", "warning", "info", "ERROR", "warning"]
    lines = [(at(i), json.dumps({"level": lv, "msg": f"m{i}"})) for i, lv in enumerate(levels)]
    with fake_loki([Stream(APP, lines)]) as fake:
        got = read_all(loki(fake, client, page_size=2), levels=("ERROR",), limit=2)
    assert [line.message for line in got] == ["m0", "m3"]
    # Full pages were asked for: the wanted lines could be anywhere.
    assert {r.params["limit"] for r in fake.queries()} == {"2"}


# Limit and paging


def test_limit_counts_lines_across_streams(client: httpx.Client) -> None:
    streams = [
        Stream({**APP, "pod": "a"}, [(at(i), f"a{i}") for i in range(0, 10, 2)]),
        Stream({**APP, "pod": "b"}, [(at(i), f"b{i}") for i in range(1, 10, 2)]),
    ]
    with fake_loki(streams) as fake:
        source = loki(fake, client)
        got = read_all(source, limit=4)
    assert [line.message for line in got] == ["a0", "b1", "a2", "b3"]
    assert [r.params["limit"] for r in fake.queries()] == ["4"]
    assert source.last_read is not None and source.last_read.lines == 4


def test_full_pages_are_followed_without_losing_or_doubling_lines(client: httpx.Client) -> None:
    # Three lines share one nanosecond across the first page boundary.
    streams = [
        Stream({**APP, "pod": "a"}, [(at(1), "a1"), (at(2), "a2"), (at(3), "a3"), (at(5), "a5")]),
        Stream({**APP, "pod": "b"}, [(at(3), "b3"), (at(4), "b4"), (at(6), "b6")]),
        Stream({**APP, "pod": "c"}, [(at(3), "c3")]),
    ]
    with fake_loki(streams) as fake:
        source = loki(fake, client, page_size=3)
        got = read_all(source)
    assert [line.message for line in got] == ["a1", "a2", "a3", "b3", "c3", "b4", "a5", "b6"]
    starts = [int(r.params["start"]) for r in fake.queries()]
    assert starts[0] == T0 * NS and starts[1] == at(3)  # the next page starts at the last line
    assert source.last_read is not None and source.last_read.complete


def test_one_nanosecond_fuller_than_a_page_does_not_loop(client: httpx.Client) -> None:
    crowd = [(at(1), f"same{i}") for i in range(5)]
    with fake_loki([Stream(APP, [*crowd, (at(2), "after")])]) as fake:
        got = read_all(loki(fake, client, page_size=2))
    assert got[-1].message == "after"
    assert len(fake.queries()) < 6


def test_at_the_page_cap_the_oldest_lines_come_back_and_the_gap_is_reported(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_loki([Stream(APP, [(at(i), f"l{i}") for i in range(10)])]) as fake:
        source = loki(fake, client, page_size=3, max_pages=2)
        with caplog.at_level(logging.WARNING, logger="tools.backends.loki"):
            got = read_all(source)
    # The second page starts at the first page's last line, so it brings two new lines.
    assert [line.message for line in got] == ["l0", "l1", "l2", "l3", "l4"]
    assert len(fake.queries()) == 2
    report = source.last_read
    assert report is not None and not report.complete and report.pages == 2
    assert report.stopped_at == datetime.fromtimestamp(T0 + 4, tz=UTC)
    assert "stopped after 2 pages" in caplog.text and "checkout" in caplog.text


def test_a_page_larger_than_loki_allows_is_a_clear_error(client: httpx.Client) -> None:
    with (
        fake_loki([Stream(APP, [(at(1), "x")])], max_entries=100) as fake,
        pytest.raises(SourceUnavailable) as err,
    ):
        read_all(loki(fake, client, page_size=500))
    assert str(err.value).startswith("loki: HTTP 400 from /loki/api/v1/query_range: ")
    assert "max entries limit per query exceeded" in str(err.value)


# Auth and tenant


def test_tenant_and_bearer_token_are_sent(client: httpx.Client) -> None:
    with fake_loki([Stream(APP, [(at(1), "x")])], tenant="team-a", token="s3cret") as fake:
        got = read_all(loki(fake, client, tenant="team-a", token="s3cret"))
        assert [line.message for line in got] == ["x"]
        headers = fake.requests[0].headers
        assert headers["x-scope-orgid"] == "team-a"
        assert headers["authorization"] == "Bearer s3cret"


def test_basic_auth_is_sent(client: httpx.Client) -> None:
    with fake_loki([Stream(APP, [(at(1), "x")])], basic=("vigil", "pw")) as fake:
        source = loki(fake, client, basic_auth=("vigil", "pw"))
        assert [line.message for line in read_all(source)] == ["x"]
        assert fake.requests[0].headers["authorization"] == "Basic dmlnaWw6cHc="
        source.check()


def test_a_missing_tenant_or_wrong_token_is_refused_without_echoing_secrets(
    client: httpx.Client,
) -> None:
    with fake_loki(tenant="team-a", token="right") as fake:
        with pytest.raises(SourceUnavailable, match=r"^loki: HTTP 401 from .*: no org id$"):
            read_all(loki(fake, client, token="right"))
        with pytest.raises(SourceUnavailable, match="HTTP 401") as err:
            read_all(loki(fake, client, tenant="team-a", token="wrong-secret"))
    assert "wrong-secret" not in str(err.value)
    assert len(fake.requests) == 2  # 4xx is not retried


# Failures


def test_unreachable_loki_is_retried_then_unavailable(client: httpx.Client) -> None:
    url = closed_port()
    sleeps = Sleeps()
    source = loki(url, client, sleep=sleeps)
    with pytest.raises(SourceUnavailable) as err:
        read_all(source)
    message = str(err.value)
    assert message.startswith(f"loki: cannot reach {url} (3 tries)")
    assert "\n" not in message
    assert sleeps == [0.25, 0.5]


def test_credentials_in_the_url_stay_out_of_messages(client: httpx.Client) -> None:
    url = closed_port().replace("http://", "http://user:hunter2@")
    with pytest.raises(SourceUnavailable) as err:
        read_all(loki(url, client, attempts=1))
    assert "hunter2" not in str(err.value) and "user" not in str(err.value)


def test_a_slow_loki_times_out(client: httpx.Client) -> None:
    with fake_loki([Stream(APP, [(at(1), "x")])]) as fake:
        fake.fail(Fault(status=None, delay_s=0.5))
        with pytest.raises(SourceUnavailable) as err:
            read_all(loki(fake, client, timeout_s=0.1))
    assert str(err.value) == f"loki: no answer from {fake.url} within 0.1s (1 try)"


def test_5xx_and_429_are_retried_then_succeed(client: httpx.Client) -> None:
    sleeps = Sleeps()
    with fake_loki([Stream(APP, [(at(1), "x")])]) as fake:
        fake.fail(Fault(502, "bad gateway"), Fault(429, "slow down", headers={"Retry-After": "1"}))
        got = read_all(loki(fake, client, sleep=sleeps))
    assert [line.message for line in got] == ["x"]
    assert len(fake.requests) == 3
    assert sleeps == [0.25, 1.0]  # backoff, then Retry-After (within the cap)


def test_retry_after_is_capped(client: httpx.Client) -> None:
    sleeps = Sleeps()
    with fake_loki([Stream(APP, [(at(1), "x")])]) as fake:
        fake.fail(Fault(429, "slow down", headers={"Retry-After": "120"}))
        read_all(loki(fake, client, sleep=sleeps, max_backoff_s=2.0))
    assert sleeps == [2.0]


def test_persistent_5xx_names_the_status_and_lokis_reason(client: httpx.Client) -> None:
    with fake_loki() as fake:
        fake.fail(*[Fault(500, "rpc error: code = Unavailable desc = ingester down")] * 3)
        with pytest.raises(SourceUnavailable) as err:
            read_all(loki(fake, client))
    assert str(err.value) == (
        "loki: HTTP 500 from /loki/api/v1/query_range after 3 tries: "
        "rpc error: code = Unavailable desc = ingester down"
    )


def test_long_error_text_is_truncated(client: httpx.Client) -> None:
    with fake_loki() as fake:
        fake.fail(Fault(400, "parse error: " + "x" * 5000))
        with pytest.raises(SourceUnavailable) as err:
            read_all(loki(fake, client))
    assert len(str(err.value)) < 400 and str(err.value).endswith("...")


def test_a_query_loki_rejects_is_reported_with_its_parse_error(client: httpx.Client) -> None:
    with fake_loki() as fake:
        source = loki(fake, client, selector='service="{service}"')  # braces forgotten
        with pytest.raises(SourceUnavailable, match=r"HTTP 400 .*: parse error at line 1"):
            read_all(source)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("<html>502 from the proxy</html>", "text/html", "is not JSON (text/html)"),
        ('{"status": "error", "error": "too many outstanding requests"}', "application/json",
         "failed: too many outstanding requests"),
        ('{"status": "success", "data": {"resultType": "matrix", "result": []}}',
         "application/json", "expected log streams, got 'matrix'"),
        ('{"status": "success", "data": {"result": []}}', "application/json",
         "unexpected answer format: data.resultType: Field required"),
        ('{"status": "success", "data": {"resultType": "streams", "result": '
         '[{"stream": {}, "values": [["12", "a", "b", "c"]]}]}}', "application/json",
         "unexpected answer format"),
        ('{"status": "success", "data": {"resultType": "streams", "result": '
         '[{"stream": {}, "values": [["soon", "a"]]}]}}', "application/json",
         "malformed timestamp 'soon'"),
        ("[1, 2", "application/json", "is not JSON"),
    ],
)  # fmt: skip
def test_garbage_answers_are_unavailable(
    client: httpx.Client, body: str, content_type: str, expected: str
) -> None:
    with fake_loki() as fake:
        fake.fail(Fault(200, body, content_type=content_type))
        with pytest.raises(SourceUnavailable) as err:
            read_all(loki(fake, client))
    assert str(err.value).startswith("loki: ") and expected in str(err.value)
    assert len(fake.requests) == 1


def test_check_reports_a_down_or_refusing_loki(client: httpx.Client) -> None:
    with fake_loki([Stream(APP, [])], tenant="t") as fake:
        loki(fake, client, tenant="t").check()
        assert fake.requests[-1].path == "/loki/api/v1/labels"
        with pytest.raises(SourceUnavailable, match="HTTP 401 from /loki/api/v1/labels"):
            loki(fake, client).check()
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        loki(closed_port(), client).check()


# The evidence tool over Loki


def bundle_streams(lines: tuple[LogLine, ...]) -> list[Stream]:
    """A bundle's log lines as Loki would hold them: one stream per pod, JSON bodies."""
    streams: dict[tuple[tuple[str, str], ...], Stream] = {}
    for line in lines:
        labels = {"service": line.service or "", **line.labels}
        body = {"level": line.level, "msg": line.message, **(line.model_extra or {})}
        ns = round(line.ts.timestamp() * 1000) * 10**6
        key = tuple(sorted(labels.items()))
        streams.setdefault(key, Stream(labels, [])).values.append((ns, json.dumps(body)))
    return list(streams.values())


def test_read_logs_finds_the_new_error_through_loki(client: httpx.Client) -> None:
    bundle = read_bundle(SUITE / "error_step-0001")
    assert bundle.logs is not None
    own = Toolbox(all_tools(), bundle_context(bundle)).call("read_logs", {})
    with fake_loki(bundle_streams(bundle.logs)) as fake:
        ctx = dataclasses.replace(bundle_context(bundle), logs=loki(fake, client))
        result = Toolbox(all_tools(), ctx).call("read_logs", {})
    assert result.ok, result.content
    assert result.content == own.content
    top = json.loads(result.content)["patterns"][0]
    assert top["status"] == "new" and top["after"] == 11
    assert top["example"].startswith("KeyError: 'customer' in serialize_order")
    assert "serializers.py" in top["stack_trace"]
    assert {r.params["query"] for r in fake.queries()} == {'{service="reviews"}'}
    assert not ctx.missing


def test_read_logs_with_loki_down_is_an_error_result_and_logs_are_missing(
    client: httpx.Client,
) -> None:
    bundle = read_bundle(SUITE / "error_step-0001")
    ctx = dataclasses.replace(bundle_context(bundle), logs=loki(closed_port(), client))
    result = Toolbox(all_tools(), ctx).call("read_logs", {})
    assert not result.ok
    assert result.content.startswith("read_logs failed: loki: cannot reach http://127.0.0.1:")
    assert "logs" in ctx.missing
