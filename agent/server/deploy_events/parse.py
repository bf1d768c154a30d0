"""The entry point: which format a webhook is in, its signature and content type checked,
and the event it describes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from agent.server.deploy_events.argo import from_argo_rollouts, from_argocd
from agent.server.deploy_events.generic import from_generic
from agent.server.deploy_events.github import from_github
from agent.server.deploy_events.model import DeployEvent, ParsedWebhook, WebhookRejected


def parse_deploy_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    github_secret: str | None = None,
    now: datetime,
) -> DeployEvent | None:
    """The deploy event a webhook describes, or None when it describes none (a GitHub ping,
    an `inactive` status): answer 200 and record nothing. `parse_webhook` says which.

    Raises `WebhookRejected` for every bad input, and nothing else.
    """
    result = parse_webhook(headers, body, github_secret=github_secret, now=now)
    return result if isinstance(result, DeployEvent) else None


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    github_secret: str | None = None,
    now: datetime,
) -> ParsedWebhook:
    """A `DeployEvent`, a `Ping` or an `Ignored` (see the module docstring for the formats).

    `now` (timezone-aware) stands in for the event time when the sender does not give one.
    Raises `WebhookRejected` for every bad input, and nothing else.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    github = h.get("x-github-event")
    if github_secret and (github is not None or "x-hub-signature-256" in h):
        _check_signature(h.get("x-hub-signature-256"), body, github_secret)
    _check_content_type(h.get("content-type", ""))
    data = _json_object(body)
    try:
        if github is not None:
            return from_github(github.strip().lower(), data)
        source = data.get("source")
        if source == "argo-rollouts":
            return from_argo_rollouts(data, now)
        if source == "argocd":
            return from_argocd(data, now)
        return from_generic(data, now)
    except RecursionError:
        raise WebhookRejected(400, "body is nested too deeply") from None


def _check_signature(sent: str | None, body: bytes, secret: str) -> None:
    if sent is None:
        raise WebhookRejected(
            401, "missing X-Hub-Signature-256: a webhook secret is configured, so sign the body"
        )
    scheme, _, digest = sent.strip().partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    given = digest.strip().lower().encode("utf-8", "replace")
    if scheme.lower() != "sha256" or not hmac.compare_digest(expected, given):
        raise WebhookRejected(
            401, "X-Hub-Signature-256 does not match the body: check the webhook secret"
        )


def _check_content_type(declared: str) -> None:
    media = declared.split(";", 1)[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json"):
        return
    hint = ""
    if media == "application/x-www-form-urlencoded":
        hint = " (for GitHub, set the webhook's content type to application/json)"
    raise WebhookRejected(
        415, f"content type {media[:80]!r} is not JSON: send application/json{hint}"
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except RecursionError:
        raise WebhookRejected(400, "body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integer too long
        raise WebhookRejected(400, f"body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, f"body is a JSON {type(data).__name__}, not an object")
    return data
