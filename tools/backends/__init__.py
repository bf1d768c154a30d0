"""Real backends behind the tools: Prometheus, Loki and log files, git and GitHub, rollout
actuators (Argo Rollouts, Kubernetes Deployments, an HTTP webhook) and escalation (PagerDuty,
an HTTP webhook). Each implements a protocol from `agent.backends.base`."""
