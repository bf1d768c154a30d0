"""Vigil's judge behind the replay interface."""

from __future__ import annotations

from agent.bundle.model import Bundle
from agent.judge.core import judge_prepared
from agent.judge.prepared import prepare
from agent.judge.replay import TierAt
from agent.judge.settings import JudgeSettings


class VigilJudge:
    """Prepares a deploy once (baselines), then judges every look from the prepared data."""

    name = "vigil"

    def __init__(self, settings: JudgeSettings | None = None) -> None:
        self.settings = settings or JudgeSettings()

    def watch(self, bundle: Bundle) -> TierAt:
        prep = prepare(bundle, self.settings)
        settings = self.settings
        return lambda at: judge_prepared(prep, at, settings).tier
