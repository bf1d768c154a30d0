"""The signal declarations of a simulated bundle, with the PromQL a team would have used."""

from __future__ import annotations

from typing import Any

from agent.bundle.model import SignalSpec
from evals.sim.profiles import ServiceProfile


def signal_names(profile: ServiceProfile) -> list[str]:
    """The signals recorded for this service, in declaration order (5 to 8 of them)."""
    names = ["request_rate", "error_ratio", "latency_p95"]
    if profile.p50_ratio is not None:
        names.append("latency_p50")
    names.append("memory_bytes")
    if profile.cpu_base is not None or len(names) < 5:
        names.append("cpu_usage")
    if profile.business == "checkout_success":
        names.append("checkout_success_ratio")
    elif profile.business == "orders":
        names.append("orders_per_second")
    if profile.dependency == "db":
        names.append("db_latency_p95")
    elif profile.dependency == "upstream":
        names.append("upstream_error_ratio")
    return names


def signal_specs(profile: ServiceProfile) -> list[SignalSpec]:
    return [SignalSpec.model_validate(_spec(name, profile)) for name in signal_names(profile)]


def _spec(name: str, p: ServiceProfile) -> dict[str, Any]:
    sel = f'service="{p.service}",env="production"'
    pod = f'namespace="{p.service}",container="{p.service}"'
    requests = f"sum(rate(http_requests_total{{{sel}}}[1m]))"
    if name == "request_rate":
        return _entry(name, "traffic", "per_second", "down", query=requests)
    if name == "error_ratio":
        failed = f'sum(rate(http_requests_total{{{sel},code=~"5.."}}[1m]))'
        return _entry(
            name,
            "errors",
            "ratio",
            "up",
            slo=p.error_slo,
            critical=True,
            events="request_rate",
            query=f"{failed} / {requests}",
        )
    if name in ("latency_p95", "latency_p50"):
        q = "0.95" if name == "latency_p95" else "0.5"
        query = (
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{sel}}}[1m])))"
        )
        if name == "latency_p50":
            return _entry(name, "latency", "seconds", "up", query=query)
        return _entry(
            name, "latency", "seconds", "up", slo=p.latency_slo, critical=True, query=query
        )
    if name == "memory_bytes":
        query = f"avg(container_memory_working_set_bytes{{{pod}}})"
        return _entry(name, "saturation", "bytes", "up", query=query)
    if name == "cpu_usage":
        query = (
            f"avg(rate(container_cpu_usage_seconds_total{{{pod}}}[1m])) / "
            f'avg(kube_pod_container_resource_limits{{{pod},resource="cpu"}})'
        )
        return _entry(name, "saturation", "ratio", "up", query=query)
    if name == "checkout_success_ratio":
        query = (
            f'sum(rate(checkout_attempts_total{{{sel},outcome="success"}}[1m])) / '
            f"sum(rate(checkout_attempts_total{{{sel}}}[1m]))"
        )
        return _entry(
            name,
            "business",
            "ratio",
            "down",
            slo=p.success_slo,
            critical=True,
            events="request_rate",
            query=query,
        )
    if name == "orders_per_second":
        return _entry(
            name,
            "business",
            "per_second",
            "down",
            query=f"sum(rate(orders_created_total{{{sel}}}[1m]))",
        )
    if name == "db_latency_p95":
        query = (
            "histogram_quantile(0.95, sum by (le) (rate(db_client_query_duration_seconds_bucket"
            f'{{{sel},db="{p.dependency_name}"}}[1m])))'
        )
        return _entry(name, "dependency", "seconds", "up", query=query)
    if name == "upstream_error_ratio":
        up = f'{sel},upstream="{p.dependency_name}"'
        query = (
            f'sum(rate(upstream_requests_total{{{up},outcome="error"}}[1m])) / '
            f"sum(rate(upstream_requests_total{{{up}}}[1m]))"
        )
        return _entry(name, "dependency", "ratio", "up", events="request_rate", query=query)
    raise KeyError(name)


def _entry(
    name: str, kind: str, unit: str, bad: str, *, critical: bool = False, **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "kind": kind, "unit": unit, "bad_direction": bad}
    if "slo" in extra:
        spec["slo"] = extra.pop("slo")
    if critical:
        spec["critical"] = True
    spec.update(extra)
    return spec
