"""vigil.yaml: the shipped example validates; every mistake names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import find_config, load_config
from agent.errors import ConfigError, ConfigFileError

EXAMPLE = Path(__file__).resolve().parent.parent / "vigil.example.yaml"
runner = CliRunner()

GOOD = """\
version: 1
prometheus:
  url: http://127.0.0.1:9090
services:
  reviews:
    signals:
      - name: request_rate
        kind: traffic
        unit: per_second
        bad_direction: down
        query: sum(rate(http_requests_total{service="reviews"}[1m]))
      - name: error_ratio
        kind: errors
        unit: ratio
        bad_direction: up
        slo: 0.03
        critical: true
        events: request_rate
        query: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    return path


def test_the_shipped_example_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert set(cfg.services) == {"checkout", "reviews"}
    checkout = cfg.service("checkout")
    assert checkout.cohorts is not None and checkout.rollout.kind == "argo"
    assert [s.name for s in checkout.signals if s.critical] == [
        "error_ratio",
        "latency_p95",
        "checkout_success_ratio",
    ]
    assert checkout.policy().max_rollbacks_per_hour == 2
    assert checkout.step_seconds == 15 and checkout.watch_seconds == 1200


def test_config_check_lists_the_services() -> None:
    result = runner.invoke(app, ["config", "check", "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "2 service(s)" in result.output and "error_ratio*" in result.output


@pytest.mark.parametrize(
    ("change", "line", "field", "reason"),
    [
        (
            (
                'query: sum(rate(http_requests_total{service="reviews"}[1m]))',
                "query: sum(rate(x[1m])",
            ),
            11,
            "services.reviews.signals[0].query",
            "not valid PromQL",
        ),
        (("kind: traffic", "kind: trafic"), 8, "services.reviews.signals[0].kind", "trafic"),
        (
            ("slo: 0.03", "slo: 0.03\n        color: red"),
            17,
            "services.reviews.signals[1].color",
            "",
        ),
        (
            ("events: request_rate", "events: requests"),
            18,
            "services.reviews.signals[1].events",
            "'requests' is not a signal here",
        ),
        (("url: http://127.0.0.1:9090", "url: 127.0.0.1:9090"), 3, "prometheus.url", "pattern"),
        (
            ("  reviews:\n", "  reviews:\n    step: 15 seconds\n"),
            6,
            "services.reviews.step",
            "not a duration",
        ),
        (
            ("  reviews:\n", "  reviews:\n    guard:\n      max_rollbacks_per_hour: -1\n"),
            7,
            "services.reviews.guard.max_rollbacks_per_hour",
            "greater than or equal to 0",
        ),
        (
            (
                "  reviews:\n",
                "  reviews:\n    repository:\n      github: acme/reviews\n"
                "      file_url: '{web_url}/blob/{sha}/{path}'\n",
            ),
            8,
            "services.reviews.repository.file_url",
            "unknown placeholder {sha}",
        ),
    ],
)
def test_every_mistake_names_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, field: str, reason: str
) -> None:
    assert change[0] in GOOD
    path = _write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    err = caught.value
    assert (err.path, err.field) == (path, field), str(err)
    assert err.line == line, str(err)
    assert reason in str(err)
    result = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{line}" in result.output.replace("\n", "")


def test_yaml_errors_and_duplicates_are_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"vigil.yaml:4: not valid YAML"):
        load_config(_write(tmp_path, "version: 1\nservices:\n  a: [\n  b: }\n"))
    dup = GOOD.replace("version: 1\n", "version: 1\nversion: 1\n")
    with pytest.raises(ConfigFileError, match="key written twice") as caught:
        load_config(_write(tmp_path, dup))
    assert caught.value.line == 2
    with pytest.raises(ConfigFileError, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_secrets_are_named_by_environment_variable_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GOOD.replace(
        "  url: http://127.0.0.1:9090\n",
        "  url: http://127.0.0.1:9090\n  auth:\n    bearer_token_env: PROM_TOKEN\n",
    )
    cfg = load_config(_write(tmp_path, text))
    assert cfg.prometheus is not None
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="PROM_TOKEN is not set"):
        cfg.prometheus.auth.headers()
    monkeypatch.setenv("PROM_TOKEN", "t0k3n")
    assert cfg.prometheus.auth.headers() == {"Authorization": "Bearer t0k3n"}
    literal = text.replace("bearer_token_env: PROM_TOKEN", "bearer_token_env: 'Bearer abc:123'")
    with pytest.raises(ConfigFileError, match="not an environment variable name"):
        load_config(_write(tmp_path, literal))


def test_sections_a_service_relies_on_must_exist(tmp_path: Path) -> None:
    text = GOOD + "    logs:\n      source: loki\n"
    with pytest.raises(ConfigFileError, match="needs a top-level loki") as caught:
        load_config(_write(tmp_path, text))
    assert caught.value.field == "services.reviews.logs"
    webhook = GOOD + "    rollout:\n      kind: webhook\n"
    with pytest.raises(ConfigFileError, match="needs url and secret_env"):
        load_config(_write(tmp_path, webhook))


def test_where_the_config_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="--config"):
        find_config()
    monkeypatch.setenv("VIGIL_CONFIG", str(EXAMPLE))
    assert find_config() == EXAMPLE
    assert find_config(tmp_path / "x.yaml") == tmp_path / "x.yaml"
    cfg = load_config(EXAMPLE)
    with pytest.raises(ConfigError, match="no service 'nope'"):
        cfg.service("nope")
