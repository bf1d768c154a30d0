"""Build the live backends a configuration names. Secrets are read from the environment
here, at the moment a client is built, and never stored in the configuration."""

from __future__ import annotations

from agent.config import VigilConfig
from agent.errors import ConfigError
from tools.backends.prometheus import PrometheusSource


def metrics_for(cfg: VigilConfig, service: str) -> PrometheusSource:
    """Prometheus, with the service's signals available by name."""
    if cfg.prometheus is None:
        raise ConfigError("the configuration has no prometheus section")
    prom = cfg.prometheus
    svc = cfg.service(service)
    return PrometheusSource.connect(
        prom.url,
        headers=prom.auth.headers(),
        basic=prom.auth.basic(),
        verify_tls=prom.verify_tls,
        retries=prom.retries,
        timeout_s=prom.timeout_s,
        signals={s.name: s.query for s in svc.signals},
    )
