"""The agent's typed tools."""

from __future__ import annotations

from typing import Any

from tools.base import Tool


def all_tools() -> list[Tool[Any, Any]]:
    """Every tool, in the order the model sees them: read first, act last."""
    from tools import act, evidence, read

    return [
        read.judge_deploy,
        read.list_deploys,
        read.query_metrics,
        evidence.read_logs,
        evidence.fetch_diff,
        read.get_runbook,
        act.pause_rollout,
        act.rollback,
        act.escalate,
        act.notify,
    ]
