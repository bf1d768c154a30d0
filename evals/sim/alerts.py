"""alert.json: the Alertmanager webhook payload (version 4) that fired for a faulty deploy."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from agent.bundle.model import format_time
from evals.sim.noise import Rng
from evals.sim.profiles import ServiceProfile
from evals.sim.world import Category

_RULES: dict[Category, tuple[str, str, str, str]] = {
    # category: alertname, severity, summary, expression template
    "errors": (
        "HighErrorRate",
        "critical",
        "{svc} 5xx ratio above {slo_pct} for 2m",
        'sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[2m])) / '
        'sum(rate(http_requests_total{{service="{svc}"}}[2m])) > {slo}',
    ),
    "pool": (
        "HighErrorRate",
        "critical",
        "{svc} 5xx ratio above {slo_pct} for 2m",
        'sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[2m])) / '
        'sum(rate(http_requests_total{{service="{svc}"}}[2m])) > {slo}',
    ),
    "dependency": (
        "HighErrorRate",
        "critical",
        "{svc} 5xx ratio above {slo_pct} for 2m",
        'sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[2m])) / '
        'sum(rate(http_requests_total{{service="{svc}"}}[2m])) > {slo}',
    ),
    "latency": (
        "HighLatencyP95",
        "critical",
        "{svc} p95 latency above {lat_slo}s for 2m",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
        '{{service="{svc}"}}[2m]))) > {lat_slo}',
    ),
    "latency_minor": (
        "LatencyP95Elevated",
        "warning",
        "{svc} p95 latency 30% above its 1h average",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
        '{{service="{svc}"}}[5m]))) > 1.3 * histogram_quantile(0.95, sum by (le) '
        '(rate(http_request_duration_seconds_bucket{{service="{svc}"}}[1h] offset 1h)))',
    ),
    "crash": (
        "KubePodCrashLooping",
        "critical",
        "pods of {svc} are restarting repeatedly",
        'increase(kube_pod_container_status_restarts_total{{namespace="{svc}"}}[5m]) > 2',
    ),
    "business": (
        "CheckoutSuccessLow",
        "critical",
        "{svc} checkout success below {success_slo}",
        'sum(rate(checkout_attempts_total{{service="{svc}",outcome="success"}}[5m])) / '
        'sum(rate(checkout_attempts_total{{service="{svc}"}}[5m])) < {success_slo}',
    ),
    "memory": (
        "MemoryGrowthHigh",
        "warning",
        "{svc} working set growing fast",
        'deriv(avg(container_memory_working_set_bytes{{namespace="{svc}"}})[10m:]) > 0',
    ),
}


def alert_payload(
    rng: Rng, category: Category, profile: ServiceProfile, fired: float, description: str
) -> dict[str, Any]:
    """What Alertmanager POSTs when the category's rule fires at `fired`."""
    name, severity, summary, expr = _RULES[category]
    values = {
        "svc": profile.service,
        "slo": profile.error_slo,
        "slo_pct": f"{profile.error_slo:.1%}",
        "lat_slo": profile.latency_slo,
        "success_slo": profile.success_slo,
    }
    labels = {
        "alertname": name,
        "service": profile.service,
        "severity": severity,
        "namespace": profile.service,
        "env": "production",
    }
    annotations = {
        "summary": summary.format_map(values),
        "description": description,
        "runbook_url": f"https://runbooks.example.com/{name.lower()}",
    }
    expression = expr.format_map(values)
    generator = "http://prometheus.monitoring.svc:9090/graph?g0.expr=" + urllib.parse.quote(
        expression, safe=""
    )
    group = {"alertname": name, "service": profile.service}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "vigil",
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager.monitoring.svc:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": format_time(datetime.fromtimestamp(fired, tz=UTC)),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": generator,
                "fingerprint": f"{int(rng.integers(0, 2**63)):016x}",
            }
        ],
    }
