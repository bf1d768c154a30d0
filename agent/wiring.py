"""Build the live backends a configuration names. Secrets are read from the environment
here, at the moment a client is built, and never stored in the configuration."""

from __future__ import annotations

import os

import httpx

from agent.backends.base import Actuator, ChangeSource, Escalator, LogSource
from agent.backends.recording import RecordingActuator, RecordingEscalator
from agent.config import GitHubConfig, VigilConfig, secret_from_env
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


def logs_for(cfg: VigilConfig, service: str) -> LogSource | None:
    """The service's log source (Loki or files), or None when none is configured."""
    logs = cfg.service(service).logs
    if logs is None:
        return None
    if logs.source == "file":
        from tools.backends.logfile import FileLogSource

        assert logs.path is not None  # validated on load
        # A path with {service} is a template; a plain path is this service's file(s).
        return FileLogSource(logs.path if "{service}" in logs.path else {service: logs.path})
    from tools.backends.loki import LokiLogSource

    loki = cfg.loki
    if loki is None:  # validated on load; kept for type checkers
        raise ConfigError(f"services.{service}.logs: a loki log source needs a top-level loki")
    token = None
    if loki.auth.bearer_token_env:
        token = loki.auth.headers()["Authorization"].removeprefix("Bearer ")
    return LokiLogSource(
        loki.url,
        selector=logs.selector or '{service="{service}"}',
        tenant=loki.tenant,
        token=token,
        basic_auth=loki.auth.basic(),
        timeout_s=loki.timeout_s,
        ignore_case=True,  # the read_logs tool promises a case-insensitive `contains`
    )


def _client(timeout_s: float = 10.0) -> httpx.Client:
    return httpx.Client(timeout=timeout_s, follow_redirects=False)


def actuator_for(cfg: VigilConfig, service: str) -> Actuator:
    """The service's rollout backend."""
    rollout = cfg.service(service).rollout
    if rollout.kind == "recording":
        return RecordingActuator()
    if rollout.kind == "webhook":
        from tools.backends.webhook import WebhookActuator

        assert rollout.url is not None and rollout.secret_env is not None  # validated on load
        return WebhookActuator(
            rollout.url,
            secret=secret_from_env(rollout.secret_env),
            client=_client(),
            status_url=rollout.status_url,
        )
    return _kubernetes_actuator(rollout.kind, rollout.namespace, rollout.name or service)


def escalator_for(cfg: VigilConfig, service: str) -> Escalator:
    """Where the service's escalations go."""
    escalation = cfg.service(service).escalation
    if escalation.kind == "recording":
        return RecordingEscalator()
    if escalation.kind == "webhook":
        from tools.backends.webhook import WebhookEscalator

        assert escalation.url is not None and escalation.secret_env is not None
        return WebhookEscalator(
            escalation.url, secret=secret_from_env(escalation.secret_env), client=_client()
        )
    from tools.backends.pagerduty import PagerDutyEscalator

    pd = cfg.pagerduty
    if pd is None:  # validated on load; kept for type checkers
        raise ConfigError(f"services.{service}.escalation: pagerduty needs a top-level pagerduty")
    return PagerDutyEscalator(secret_from_env(pd.routing_key_env), client=_client(), url=pd.url)


def _kubernetes_actuator(kind: str, namespace: str | None, name: str) -> Actuator:
    """Argo Rollouts or a Deployment, with credentials from the pod (in cluster) or kubeconfig."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if namespace is None:  # validated on load; kept for type checkers
        raise ConfigError(f"a {kind} rollout needs a namespace")
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    except ConfigException:
        try:
            api = config.new_client_from_config()  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as exc:
            raise ConfigError(
                f"no Kubernetes credentials (in cluster or kubeconfig): {exc}"
            ) from None
    if kind == "argo":
        from tools.backends.argo import ArgoRolloutsActuator

        return ArgoRolloutsActuator(
            client.CustomObjectsApi(api),
            namespace_for=namespace,
            name_for=name,
            apps=client.AppsV1Api(api),
        )
    from tools.backends.kubernetes import DeploymentActuator

    return DeploymentActuator(client.AppsV1Api(api), namespace_for=namespace, name_for=name)


def changes_for(cfg: VigilConfig, service: str) -> ChangeSource | None:
    """The service's repository (a local clone or GitHub), or None when none is configured."""
    repo = cfg.service(service).repository
    if repo is None:
        return None
    if repo.git is not None:
        from tools.backends.git import GitChangeSource

        return GitChangeSource(repo.git, ref_template=repo.ref_template)
    from tools.backends.github import GitHubChangeSource

    gh = cfg.github if cfg.github is not None else GitHubConfig()
    token = os.environ.get(gh.token_env) if gh.token_env else None
    assert repo.github is not None  # exactly one of git/github, validated on load
    return GitHubChangeSource(
        repo.github,
        client=_client(20.0),
        base_url=gh.base_url,
        token=token or None,
        ref_template=repo.ref_template,
    )
