"""Deploy webhooks in, one typed `DeployEvent` out.

`parse_deploy_event(headers, body, github_secret=..., now=...)` reads four formats, picked
from the headers and the body (`parse_webhook` is the same, and also says what a webhook that
is not a deploy was):

- `X-GitHub-Event` header → **GitHub** (`deployment_status`, `deployment`, `ping`);
- a body whose `source` is `"argo-rollouts"` or `"argocd"` → the **notification templates**
  in `TEMPLATES` (paste them into the notifications ConfigMap);
- anything else → the **generic** JSON format:
  `{"service", "version", "kind" (or "status"), "environment"?, "deploy_id"?, "id"?,
  "previous_version"?, "started_at"?, "at"?, "strategy"?, "commit"?, "url"?}`.

How each maps to a `kind`:

    GitHub deployment_status  queued, pending → started · in_progress → progressing ·
                              success → succeeded · failure, error → failed ·
                              inactive, waiting → Ignored (a newer deploy superseded it /
                              it awaits approval: neither is a deploy to watch)
    GitHub deployment         created → started
    Argo Rollouts trigger     on-rollout-updated → started · on-rollout-step-completed →
                              progressing · on-rollout-completed → succeeded ·
                              on-rollout-paused → paused · on-rollout-aborted → aborted ·
                              on-analysis-run-failed → failed
    Argo CD trigger           on-sync-running → started · on-sync-succeeded → progressing
                              (manifests applied, pods still rolling) · on-deployed →
                              succeeded (synced and healthy) · on-sync-failed,
                              on-health-degraded → failed

Fields: GitHub's `deployment.payload` (an object or a JSON string) may name `service`,
`version`, `previous_version` and `strategy`; otherwise the service is the repository's name
and the version the commit's first 12 characters; `started_at` is when the deployment was
created. Argo Rollouts: the service is the rollout, the version the first container's image
tag, and `started_at` the event's own time (a rollout records no start; the store keeps the
first event's). Argo CD: the application, the sync revision, and the sync operation's start.
A template may add `service`, `environment`, `version`, `url` and `at` to override these.
Without `at`, an event happened at `now`, the time it was received.

Every event of one deploy carries the same `deploy_id` (GitHub: the deployment id; Argo
Rollouts: namespace, rollout and revision; Argo CD: application and revision; generic: the
caller's `deploy_id`, else service, environment and version). The `dedup_key` is the same for
every delivery of one event and differs between events: GitHub's `X-GitHub-Delivery` is new on
each redelivery, so the key is the deployment id with the status id and state; Argo Rollouts:
the deploy with the trigger and the canary step (the trigger, not the object's phase, which can
lag a generation); Argo CD: the deploy with the trigger and the sync operation's start (a
re-sync is a new event); generic: the caller's `id`, else a hash of the canonical body.

Rejections are `WebhookRejected(status, reason)`, never any other exception:

    400  body is not JSON, not an object, nested too deeply; unknown event type or trigger
    401  GitHub signature missing or wrong (only when a secret is configured)
    415  a declared Content-Type that is not JSON
    422  a field is missing or invalid: the reason names its path

With a secret, every GitHub event must carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the
raw body>`; any other request that carries that header is checked the same way, so a generic
sender can sign too. A GitHub `ping` and events that are not deploys (`inactive`, `waiting`)
give None from `parse_deploy_event` (`Ping` and `Ignored` from `parse_webhook`): answer them
200 and record nothing.
"""

from __future__ import annotations

from agent.server.deploy_events.model import (
    DeployEvent,
    Ignored,
    Kind,
    ParsedWebhook,
    Ping,
    Source,
    Strategy,
    WebhookRejected,
)
from agent.server.deploy_events.parse import parse_deploy_event, parse_webhook
from agent.server.deploy_events.templates import TEMPLATES

__all__ = [
    "TEMPLATES",
    "DeployEvent",
    "Ignored",
    "Kind",
    "ParsedWebhook",
    "Ping",
    "Source",
    "Strategy",
    "WebhookRejected",
    "parse_deploy_event",
    "parse_webhook",
]
