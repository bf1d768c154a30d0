"""The notification templates for Argo Rollouts and Argo CD that send Vigil these events."""

from __future__ import annotations

from agent.server.deploy_events.argo import ARGOCD_KIND, ROLLOUT_KIND

_ROLLOUT_BODY = """\
{
  "source": "argo-rollouts",
  "trigger": "TRIGGER",
  "rollout": "{{.rollout.metadata.name}}",
  "namespace": "{{.rollout.metadata.namespace}}",
  "revision": "{{index .rollout.metadata.annotations "rollout.argoproj.io/revision"}}",
  "phase": "{{.rollout.status.phase}}",
  "step": "{{.rollout.status.currentStepIndex}}",
  "strategy": "{{if .rollout.spec.strategy.canary}}canary{{else}}blue-green{{end}}",
  "images": [{{range $i, $c := .rollout.spec.template.spec.containers}}{{if $i}}, {{end}}\
"{{$c.image}}"{{end}}]
}"""

_ARGOCD_BODY = """\
{
  "source": "argocd",
  "trigger": "TRIGGER",
  "app": "{{.app.metadata.name}}",
  "revision": "{{.app.status.sync.revision}}",
  "sync_status": "{{.app.status.sync.status}}",
  "health": "{{.app.status.health.status}}",
  "phase": "{{with .app.status.operationState}}{{.phase}}{{end}}",
  "started_at": "{{with .app.status.operationState}}{{.startedAt}}{{end}}",
  "url": "{{with .context.argocdUrl}}{{.}}/applications/{{$.app.metadata.name}}{{end}}"
}"""

_SERVICE = """\
  # Vigil's deploy webhook (the URL of `vigil serve`).
  service.webhook.vigil: |
    url: https://vigil.example.com/webhooks/deploy
    headers:
    - name: Content-Type
      value: application/json
"""


def _template(trigger: str, body: str) -> str:
    indented = "".join(
        f"          {line}\n" for line in body.replace("TRIGGER", trigger).split("\n")
    )
    return (
        f"  template.vigil-{trigger}: |\n"
        "    webhook:\n"
        "      vigil:\n"
        "        method: POST\n"
        "        body: |\n"
        f"{indented}"
    )


def _rollouts_configmap() -> str:
    triggers = "".join(f"  trigger.{t}: |\n    - send: [vigil-{t}]\n" for t in ROLLOUT_KIND)
    return (
        "# argo-rollouts-notification-configmap: merge into `data`. Keep any templates your\n"
        "# triggers already send, e.g. `send: [rollout-updated, vigil-on-rollout-updated]`.\n"
        "# Subscribe each Rollout, once per trigger:\n"
        '#   notifications.argoproj.io/subscribe.on-rollout-updated.vigil: ""\n'
        '# Optional keys a template may add: "service", "environment", "version" (else the\n'
        '# rollout name and the first container\'s image tag), "url".\n'
        "data:\n" + _SERVICE + triggers + "".join(_template(t, _ROLLOUT_BODY) for t in ROLLOUT_KIND)
    )


def _argocd_configmap() -> str:
    wiring = "".join(f"#   trigger.{t}: send: [..., vigil-{t}]\n" for t in ARGOCD_KIND)
    return (
        "# argocd-notifications-cm: merge into `data`. Add Vigil's template to the `send` list\n"
        "# of each catalog trigger (keep its `when` and `oncePer`):\n"
        + wiring
        + "# Subscribe each Application, once per trigger:\n"
        '#   notifications.argoproj.io/subscribe.on-deployed.vigil: ""\n'
        '# Optional keys a template may add: "service", "environment", "version" (else the\n'
        "# application name and the sync revision).\n"
        "data:\n" + _SERVICE + "".join(_template(t, _ARGOCD_BODY) for t in ARGOCD_KIND)
    )


# The notification ConfigMap snippets Vigil expects, by source (the README shows them).
TEMPLATES: dict[str, str] = {
    "argo-rollouts": _rollouts_configmap(),
    "argocd": _argocd_configmap(),
}
