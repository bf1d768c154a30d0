"""The HTTP app: webhooks in, health and metrics, a small read API.

Every webhook is answered 2xx only after its rows are committed (see `intake`); anything
malformed is a 4xx whose body says why, never a 5xx.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError

from agent.alerts import AlertmanagerPayload
from agent.server.intake import Intake
from agent.server.metrics import ServerMetrics

_MAX_BODY = 5 * 1024 * 1024


@dataclass(frozen=True)
class WebhookAuth:
    """Optional auth for the Alertmanager webhook: a bearer token or basic credentials."""

    bearer_token: str | None = None
    basic: tuple[str, str] | None = None

    def allows(self, header: str | None) -> bool:
        if self.bearer_token is None and self.basic is None:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if self.bearer_token is not None and scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self.bearer_token.encode())
        if self.basic is not None and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            ok_user = hmac.compare_digest(user.encode(), self.basic[0].encode())
            ok_pass = hmac.compare_digest(password.encode(), self.basic[1].encode())
            return ok_user and ok_pass
        return False


def _component_schema(model: type[AlertmanagerPayload]) -> dict[str, Any]:
    """A model's JSON schema with its definitions referenced from `components/schemas`, so the
    published OpenAPI document has no dangling `$ref`."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"schema": schema, "defs": defs}


_ALERTMANAGER_SCHEMA = _component_schema(AlertmanagerPayload)


def _reject(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


def _validation_reason(exc: ValidationError | RequestValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'body'}: {first.get('msg', 'invalid')}{more}"


def create_app(
    intake: Intake,
    metrics: ServerMetrics,
    *,
    ready: Callable[[], str | None] | None = None,
    auth: WebhookAuth | None = None,
    github_secret: str | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    app = FastAPI(
        title="Vigil",
        version="0.1.0",
        description="Deploy-aware SRE: webhooks in, deploy watch, incidents out.",
    )
    webhook_auth = auth or WebhookAuth()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _reject(422, _validation_reason(exc))

    async def _body(request: Request) -> bytes | JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
            return _reject(413, f"body larger than {_MAX_BODY} bytes")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _reject(413, f"body larger than {_MAX_BODY} bytes")
        return body

    @app.post(
        "/webhooks/alertmanager",
        summary="Alertmanager webhook (payload version 4)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ALERTMANAGER_SCHEMA["schema"]}},
            }
        },
        responses={200: {"description": "committed"}, 401: {}, 400: {}, 413: {}, 422: {}},
    )
    async def alertmanager(request: Request) -> Response:
        kind = "alertmanager"
        if not webhook_auth.allows(request.headers.get("authorization")):
            metrics.webhooks_rejected.labels(kind, "401").inc()
            return _reject(401, "missing or wrong credentials")
        body = await _body(request)
        if isinstance(body, JSONResponse):
            metrics.webhooks_rejected.labels(kind, str(body.status_code)).inc()
            return body
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            metrics.webhooks_rejected.labels(kind, "400").inc()
            return _reject(400, f"body is not JSON: {exc}")
        except RecursionError:
            metrics.webhooks_rejected.labels(kind, "400").inc()
            return _reject(400, "body is nested too deeply")
        try:
            payload = AlertmanagerPayload.model_validate(data)
        except ValidationError as exc:
            metrics.webhooks_rejected.labels(kind, "422").inc()
            return _reject(422, _validation_reason(exc))
        ack = intake.accept_alerts(payload, clock())
        metrics.webhooks_received.labels(kind).inc()
        return JSONResponse(
            {
                "status": "accepted",
                "job_id": ack.job_id,
                "new": ack.new,
                "updated": ack.updated,
                "duplicates": ack.duplicates,
            }
        )

    @app.post(
        "/webhooks/deploy",
        summary="Deploy events: generic JSON, GitHub deployment_status, Argo Rollouts, ArgoCD",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
        responses={200: {"description": "committed"}, 400: {}, 401: {}, 413: {}, 422: {}},
    )
    async def deploy(request: Request) -> Response:
        from datetime import UTC, datetime

        from agent.server.deploy_events import (
            DeployEvent,
            Ignored,
            WebhookRejected,
            parse_webhook,
        )

        kind = "deploy"
        body = await _body(request)
        if isinstance(body, JSONResponse):
            metrics.webhooks_rejected.labels(kind, str(body.status_code)).inc()
            return body
        now = clock()
        try:
            event = parse_webhook(
                dict(request.headers),
                body,
                github_secret=github_secret,
                now=datetime.fromtimestamp(now, tz=UTC),
            )
        except WebhookRejected as exc:
            metrics.webhooks_rejected.labels(kind, str(exc.status)).inc()
            return _reject(exc.status, exc.reason)
        if isinstance(event, Ignored):
            return JSONResponse({"status": "ignored", "reason": event.reason})
        if not isinstance(event, DeployEvent):
            return JSONResponse({"status": "pong"})
        record = {
            "source": event.source,
            "kind": event.kind,
            "service": event.service,
            "environment": event.environment,
            "deploy_id": event.deploy_id,
            "version": event.version,
            "previous_version": event.previous_version,
            "strategy": event.strategy,
            "commit": event.commit,
            "started_at": event.started_at.timestamp(),
            "at": event.at.timestamp(),
        }
        ack = intake.accept_deploy(record, event.dedup_key, now)
        metrics.webhooks_received.labels(kind).inc()
        return JSONResponse(
            {"status": "duplicate" if ack.duplicate else "accepted", "job_id": ack.job_id}
        )

    @app.get("/healthz", summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The store answers and the workers run")
    def readyz() -> Response:
        try:
            depth = intake.depth()
        except Exception as exc:  # the store cannot be read
            return _reject(503, f"store: {exc}")
        problem = ready() if ready is not None else None
        if problem is not None:
            return _reject(503, problem)
        return JSONResponse({"status": "ready", "queue_depth": depth})

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _read_api(app, intake)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            doc.setdefault("components", {}).setdefault("schemas", {}).update(
                _ALERTMANAGER_SCHEMA["defs"]
            )
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _read_api(app: FastAPI, intake: Intake) -> None:
    def rows(sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in intake._conn().execute(sql, args)]

    @app.get("/api/alerts", summary="Alerts received, oldest first")
    def alerts(service: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return intake.alerts(limit=max(1, min(limit, 10_000)), service=service)

    @app.get("/api/incidents", summary="Incidents, newest first")
    def incidents(service: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT id, created_at, service, environment, alertname, severity, deploy_id,"
        sql += " mode, tier, deploy_caused, confidence, escalated, summary FROM incidents"
        args: tuple[Any, ...] = ()
        if service:
            sql += " WHERE service = ?"
            args = (service,)
        return rows(sql + " ORDER BY created_at DESC LIMIT ?", (*args, max(1, min(limit, 1000))))

    @app.get("/api/incidents/{incident_id}", summary="One incident with its audit trail")
    def incident(incident_id: str) -> Response:
        found = rows("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if not found:
            return _reject(404, f"no incident {incident_id!r}")
        item = found[0]
        item["result"] = json.loads(item["result"])
        item["audit"] = [
            {**r, "data": json.loads(r["data"])}
            for r in rows(
                "SELECT seq, at, kind, actor, summary, data FROM audit WHERE incident_id = ?"
                " ORDER BY seq",
                (incident_id,),
            )
        ]
        return JSONResponse(item)

    @app.get("/api/deploys", summary="Deploys, newest first")
    def deploys(service: str | None = None) -> list[dict[str, Any]]:
        return intake.deploys(service)

    @app.get("/api/watch", summary="Deploy watch sessions (active first)")
    def watch(state: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM watch_sessions"
        args: tuple[Any, ...] = ()
        if state:
            sql += " WHERE state = ?"
            args = (state,)
        sql += " ORDER BY state != 'watching', opened_at DESC"
        out = rows(sql, args)
        for item in out:
            item["first_tier_at"] = json.loads(item["first_tier_at"])
        return out

    @app.get("/api/watch/{deploy_id:path}", summary="A watch session with its health checks")
    def watch_session(deploy_id: str) -> Response:
        found = rows("SELECT * FROM watch_sessions WHERE deploy_id = ?", (deploy_id,))
        if not found:
            return _reject(404, f"no watch session for {deploy_id!r}")
        item = found[0]
        item["first_tier_at"] = json.loads(item["first_tier_at"])
        item["health_checks"] = [
            {**r, "reasons": json.loads(r["reasons"])}
            for r in rows(
                "SELECT at, tier, status, deploy_caused, reasons FROM health_checks"
                " WHERE deploy_id = ? ORDER BY at",
                (deploy_id,),
            )
        ]
        item["actions"] = rows(
            "SELECT seq, at, action, status, actor, detail FROM watch_actions"
            " WHERE deploy_id = ? ORDER BY seq",
            (deploy_id,),
        )
        return JSONResponse(item)

    @app.get("/api/services/{service}/health", summary="Health history of a service's deploys")
    def health(service: str, limit: int = 50) -> list[dict[str, Any]]:
        return rows(
            "SELECT s.deploy_id, d.version, d.started_at, s.state, s.max_tier, s.first_tier_at,"
            " s.closed_at, s.reason FROM watch_sessions s JOIN deploys d ON d.id = s.deploy_id"
            " WHERE s.service = ? ORDER BY d.started_at DESC LIMIT ?",
            (service, max(1, min(limit, 1000))),
        )

    @app.get("/api/stability", summary="Deployment stability per service")
    def stability() -> list[dict[str, Any]]:
        out = []
        for r in rows(
            "SELECT s.service, count(*) AS deploys,"
            " sum(s.state = 'rolled_back') AS rolled_back, sum(s.state = 'paused') AS paused,"
            " sum(s.state = 'completed') AS completed FROM watch_sessions s GROUP BY s.service"
        ):
            times = [
                t["closed_at"] - t["started_at"]
                for t in rows(
                    "SELECT s.closed_at, d.started_at FROM watch_sessions s JOIN deploys d"
                    " ON d.id = s.deploy_id WHERE s.service = ? AND s.state = 'rolled_back'"
                    " AND s.closed_at IS NOT NULL",
                    (r["service"],),
                )
            ]
            times.sort()
            out.append(
                {
                    **r,
                    "rollback_rate": round(r["rolled_back"] / r["deploys"], 4)
                    if r["deploys"]
                    else 0.0,
                    "median_time_to_rollback_s": times[len(times) // 2] if times else None,
                }
            )
        return out
