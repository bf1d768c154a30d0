"""Prometheus as a metrics source, through prometheus-api-client.

Queries run on a step grid aligned to multiples of the step (so two looks at the same moment
see the same samples); NaN and missing samples stay missing (`v=None`), never zero; an empty
result is no data, which the judge reports as such. Any failure of the server — refused,
timed out, an HTTP error, a PromQL error, a body that is not Prometheus' — is raised as
`SourceUnavailable` with the server's own reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agent.backends.base import MetricPoint, MetricSeries, SourceUnavailable

_MAX_POINTS = 11_000  # Prometheus refuses ranges of more than 11,000 points per series


def align(start: float, end: float, step: float) -> tuple[float, float]:
    """The grid a range query uses: start rounded down and end rounded down to the step."""
    return math.floor(start / step) * step, math.floor(end / step) * step


class PrometheusSource:
    """`MetricsSource` over a Prometheus server. `signals` maps signal names to PromQL, so the
    agent can ask for `error_ratio` as well as for raw PromQL."""

    def __init__(
        self,
        client: Any,  # prometheus_api_client.PrometheusConnect (untyped library)
        *,
        signals: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        name: str = "prometheus",
    ) -> None:
        self.client = client
        self.signals = dict(signals or {})
        self.timeout_s = timeout_s
        self.name = name

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        verify_tls: bool = True,
        retries: int = 2,
        timeout_s: float = 10.0,
        signals: Mapping[str, str] | None = None,
    ) -> PrometheusSource:
        """A source with a client built from connection settings (retries on 5xx/connection)."""
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        retry = Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=("GET", "POST"),
            raise_on_status=False,
        )
        client = PrometheusConnect(
            url=url.rstrip("/"),
            headers=dict(headers or {}),
            auth=basic,
            disable_ssl=not verify_tls,
            retry=retry,
            timeout=timeout_s,
        )
        return cls(client, signals=signals, timeout_s=timeout_s, name=f"prometheus at {url}")

    def signal_names(self) -> list[str]:
        return sorted(self.signals)

    def resolve(self, query: str) -> str:
        return self.signals.get(query, query)

    def query_range(self, query: str, start: float, end: float, step: float) -> list[MetricSeries]:
        if step <= 0:
            raise SourceUnavailable(f"{self.name}: step must be positive, not {step}")
        lo, hi = align(start, end, step)
        if hi < lo:
            return []
        promql = self.resolve(query)
        out: dict[tuple[tuple[str, str], ...], MetricSeries] = {}
        # Long ranges are split so no request passes Prometheus' points-per-series limit.
        chunk = step * (_MAX_POINTS - 1)
        t = lo
        while t <= hi:
            upto = min(hi, t + chunk)
            raw = self._call(
                "range query",
                promql,
                lambda a=t, b=upto: self.client.custom_query_range(
                    promql,
                    start_time=_dt(a),
                    end_time=_dt(b),
                    step=_step(step),
                    timeout=self.timeout_s,
                ),
            )
            for series in _parse(raw, query, promql, self.name, matrix=True):
                key = tuple(sorted(series.labels.items()))
                if key in out:
                    joined = [*out[key].points, *series.points]
                    out[key] = series.model_copy(update={"points": joined})
                else:
                    out[key] = series
            t = upto + step
        return [_on_grid(s, lo, hi, step) for s in out.values()]

    def query_instant(self, query: str, at: float) -> list[MetricSeries]:
        promql = self.resolve(query)
        raw = self._call(
            "instant query",
            promql,
            lambda: self.client.custom_query(
                promql, params={"time": f"{at:.3f}"}, timeout=self.timeout_s
            ),
        )
        return _parse(raw, query, promql, self.name, matrix=False)

    def check(self) -> None:
        """Raise SourceUnavailable unless the server answers a trivial query."""
        self.query_instant("vector(1)", datetime.now(tz=UTC).timestamp())

    def _call(self, what: str, promql: str, fn: Any) -> Any:
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from requests.exceptions import RequestException

        try:
            return fn()
        except PrometheusApiClientException as exc:
            raise SourceUnavailable(
                f"{self.name}: {what} {promql!r} failed: {_short(exc)}"
            ) from None
        except RequestException as exc:
            kind = type(exc).__name__
            raise SourceUnavailable(f"{self.name}: unreachable ({kind}): {_short(exc)}") from None
        except ValueError as exc:  # a body that is not JSON
            raise SourceUnavailable(f"{self.name}: answer is not Prometheus JSON: {exc}") from None


def _short(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _step(step: float) -> str:
    return f"{int(step)}s" if float(step).is_integer() else f"{step}s"


def _value(text: Any) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _parse(raw: Any, query: str, promql: str, source: str, *, matrix: bool) -> list[MetricSeries]:
    """Prometheus' `data.result` (what the client returns) as MetricSeries."""
    if isinstance(raw, dict) and "resultType" in raw:  # a scalar or string result
        raw = [{"metric": {}, "value": raw.get("result")}]
    if not isinstance(raw, list):
        raise SourceUnavailable(f"{source}: unexpected answer to {promql!r}: {str(raw)[:200]}")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise SourceUnavailable(f"{source}: unexpected series in answer to {promql!r}")
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        pairs = item.get("values") if matrix else [item.get("value")]
        points = []
        for pair in pairs or []:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise SourceUnavailable(f"{source}: malformed sample in answer to {promql!r}")
            t = _value(pair[0])
            if t is None:
                raise SourceUnavailable(f"{source}: malformed timestamp in answer to {promql!r}")
            points.append(MetricPoint(t=t, v=_value(pair[1])))
        name = labels.get("__name__", query)
        out.append(MetricSeries(name=name, labels=labels, points=points))
    return out


def _on_grid(series: MetricSeries, lo: float, hi: float, step: float) -> MetricSeries:
    """Every grid point from lo to hi, with `None` where Prometheus returned no sample."""
    have = {round((p.t - lo) / step): p.v for p in series.points}
    n = round((hi - lo) / step) + 1
    points = [MetricPoint(t=lo + i * step, v=have.get(i)) for i in range(n)]
    return series.model_copy(update={"points": points})
