"""Answers to questions about an incident, asked in its thread or in a DM.

With a model, the agent answers with the same tools and guard as a triage (the asker's Slack
id is the actor); the incident and the question reach it as data, never as instructions, and
an answer citing a number that appears neither in the incident nor in a tool result is not
shown. Without a model (or when it fails), the answer is built from the stored incident:
"why" gives the judge's evidence, "what changed" the suspect files, "show <signal>" the latest
values through `query_metrics`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agent.audit import AuditEvent, AuditLog
from agent.backends.base import SourceUnavailable
from agent.prompts import number, render
from agent.redact import redact
from agent.server.runtime import Backends
from agent.slack import incidents
from agent.slack.actions import actor
from agent.slack.blocks import cut, escape
from agent.slack.incidents import IncidentView
from agent.slack.records import SlackStore
from tools.base import Toolbox, ToolResult
from tools.context import ToolContext

if TYPE_CHECKING:
    from agent.llm import AgentLoop

LoopFactory = Callable[[], "tuple[AgentLoop | None, str]"]

_MENTION = re.compile(r"<[@#!][^>]*>")
_SINCE = re.compile(r"since\s+(\d{1,2}):(\d{2})")
_LAST = re.compile(r"(?:last|past)\s+(\d+)\s*(m|min|mins|minutes|h|hours?)\b")
_SHOW = re.compile(r"\bshow\s+(?:me\s+)?(?:the\s+)?([\w.:-]+)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

ASK = (
    "Ask me about this incident: *why* do you think it's the deploy? · *what changed*? · "
    "*show <signal>* (e.g. `show error_ratio since 14:00`) · *what did you do*? · *next steps*?"
)


@dataclass(frozen=True)
class ChatAnswer:
    text: str  # mrkdwn, untrusted parts escaped
    mode: str  # llm | offline
    note: str | None = None
    rejected: tuple[str, ...] = ()  # numbers the model cited that the facts do not hold


def clean_question(text: str) -> str:
    return " ".join(_MENTION.sub(" ", text).split())[:2000]


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def why_answer(v: IncidentView) -> str:
    head = (
        f"*Why:* the judge says {'tier ' + str(v.tier) if v.tier is not None else 'nothing yet'}"
        + (f" ({escape(v.tier_name)})" if v.tier_name else "")
        + f"; caused by the deploy: *{_yes_no(v.deploy_caused)}*"
        + (f" (`{escape(v.deploy_id)}` {escape(v.version or '')})" if v.deploy_id else "")
        + "."
    )
    lines = [head]
    if v.evidence:
        lines.append("*Evidence:*")
        lines += [f"• {escape(cut(e, 500))}" for e in v.evidence[:8]]
    else:
        lines.append("The judge found no signal past its threshold.")
    if v.missing_sources:
        lines.append(f"_Not seen: {escape(', '.join(v.missing_sources))}._")
    lines.append(escape(cut(v.summary, 800)))
    return "\n".join(lines)


def changes_answer(v: IncidentView) -> str:
    if not v.suspect_files:
        why = "no diff could be read" if "change" in v.missing_sources else "no file stood out"
        return f"No suspect change for `{escape(v.incident_id)}`: {why}."
    where = f" in `{escape(v.deploy_id)}` {escape(v.version or '')}" if v.deploy_id else ""
    lines = [f"*Suspect changes{where}* (most likely first):"]
    lines += [f"{i}. `{escape(p)}`" for i, p in enumerate(v.suspect_files[:8], 1)]
    return "\n".join(lines)


def actions_answer(v: IncidentView) -> str:
    if not v.actions:
        return "Nothing was done on this incident yet."
    return "*Actions:*\n" + "\n".join(
        f"• *{escape(a.name)}* {escape(a.status)}"
        + (f" by {escape(a.actor)}" if a.actor else "")
        + (f": {escape(cut(a.reason, 300))}" if a.reason else "")
        for a in v.actions[:10]
    )


def next_answer(v: IncidentView) -> str:
    if not v.next_steps:
        return "No next step was proposed."
    return "*Next steps:*\n" + "\n".join(f"{i}. {escape(s)}" for i, s in enumerate(v.next_steps, 1))


def window_minutes(question: str, now: float) -> float:
    """`since 14:00` (UTC, today or yesterday) or `last 2h`; 30 minutes by default."""
    if m := _SINCE.search(question):
        day = datetime.fromtimestamp(now, tz=UTC)
        at = day.replace(hour=min(int(m[1]), 23), minute=min(int(m[2]), 59), second=0)
        if at.timestamp() > now:
            at -= timedelta(days=1)
        return max(1.0, min((now - at.timestamp()) / 60, 24 * 60))
    if m := _LAST.search(question):
        minutes = float(m[1]) * (60 if m[2].startswith("h") else 1)
        return max(1.0, min(minutes, 24 * 60))
    return 30.0


def pick_signal(word: str, names: list[str]) -> str | None:
    """The known signal the asker means: exact, else the one whose name holds the word."""
    word = word.lower()
    if word in names:
        return word
    found = [n for n in names if word in n.lower()]
    return found[0] if len(found) == 1 else None


def show_answer(question: str, ctx: ToolContext | None, toolbox: Toolbox | None) -> str:
    if ctx is None or toolbox is None or ctx.metrics is None:
        return "I cannot read metrics for this incident here: no metrics source."
    try:
        names = sorted(ctx.metrics.signal_names())
    except SourceUnavailable as exc:
        return f"The metrics source is unavailable: {escape(str(exc))}"
    m = _SHOW.search(question.lower())
    name = pick_signal(m[1], names) if m else None
    if name is None:
        known = ", ".join(f"`{escape(n)}`" for n in names) or "none"
        return f"Which signal? I know: {known}."
    minutes = window_minutes(question.lower(), ctx.now)
    step = max(15.0, ctx.step_s)
    result: ToolResult = toolbox.call(
        "query_metrics", {"query": name, "minutes": round(minutes, 1), "step_seconds": step}
    )
    if not result.ok:
        return f"`query_metrics` failed: {escape(cut(result.content, 500))}"
    data = json.loads(result.content)
    lines = [f"*{escape(name)}*, last {minutes:.0f} min (step {step:.0f} s):"]
    for s in data["series"][:6]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s["labels"].items()))
        lines.append(
            f"• {escape(labels) or 'all'}: latest *{number(s['latest'])}* · min "
            f"{number(s['minimum'])} · max {number(s['maximum'])} · mean {number(s['mean'])}"
            + (f" · {s['gaps']} gaps" if s["gaps"] else "")
        )
    if not data["series"]:
        lines.append("no data in that window")
    return "\n".join(lines)


def offline_answer(
    v: IncidentView, question: str, ctx: ToolContext | None, toolbox: Toolbox | None
) -> str:
    q = question.lower()
    if _SHOW.search(q):
        return show_answer(question, ctx, toolbox)
    if any(w in q for w in ("changed", "change", "diff", "suspect", "file", "commit")):
        return changes_answer(v)
    if any(w in q for w in ("why", "deploy", "cause", "evidence", "sure")):
        return why_answer(v)
    if any(w in q for w in ("action", "did you", "done", "rollback", "paused")):
        return actions_answer(v)
    if "next" in q:
        return next_answer(v)
    return f"{escape(cut(v.summary, 800))}\n\n{ASK}"


def unfounded_numbers(answer: str, facts: str) -> list[str]:
    """Numbers in the answer that appear nowhere in the facts it was given."""
    return sorted({n for n in _NUMBER.findall(answer) if len(n) > 1 and n not in facts})


class IncidentChat:
    def __init__(
        self,
        store: SlackStore,
        backends: Backends,
        clock: Callable[[], float],
        loop_factory: LoopFactory,
    ) -> None:
        self.store = store
        self.backends = backends
        self.clock = clock
        self.loop_factory = loop_factory

    def _context(self, v: IncidentView, user: str, now: float) -> ToolContext | None:
        incident = incidents.incident_of(self.store, v, now)
        recent = incidents.deploys(self.store, v.service, now)
        if v.deploy_id and not any(d.id == v.deploy_id for d in recent):
            found = incidents.deploy(self.store, v.deploy_id)
            recent = [found] if found else recent
        try:
            ctx = self.backends.context(incident, recent, now, AuditLog())
        except SourceUnavailable:
            return None
        ctx.actor = actor(user)
        return ctx

    def answer(self, incident_id: str, question: str, user: str) -> ChatAnswer:
        from agent.triage import record_calls, toolbox_for

        now = self.clock()
        v = incidents.view(self.store, incident_id)
        if v is None:
            return ChatAnswer(f"I know no incident `{escape(incident_id)}`.", "offline")
        ctx = self._context(v, user, now)
        toolbox = None if ctx is None else toolbox_for(ctx)
        if ctx is not None and toolbox is not None:
            record_calls(toolbox, ctx)  # a chat's calls are audited like a triage's
        loop, why = self.loop_factory()
        reply: ChatAnswer | None = None
        rejected: tuple[str, ...] = ()
        if loop is not None and ctx is not None and toolbox is not None:
            reply = self._ask_model(loop, v, question, user, ctx, toolbox)
            why, rejected = reply.note or why, reply.rejected
            if reply.mode != "llm":
                reply = None
        if reply is None:
            text = offline_answer(v, question, ctx, toolbox)
            reply = ChatAnswer(text, "offline", None if loop is None else why, rejected)
        events = [
            AuditEvent(
                seq=0,
                at=now,
                kind="note",
                actor=actor(user),
                summary=f"asked in Slack: {cut(question, 300)}",
                data={
                    "question": question,
                    "answered_by": reply.mode,
                    "note": reply.note,
                    "rejected_numbers": list(reply.rejected),
                },
            ),
            *(ctx.audit.events if ctx is not None else []),
        ]
        self.store.append_audit(v.incident_id, events)
        return reply

    def _ask_model(
        self,
        loop: AgentLoop,
        v: IncidentView,
        question: str,
        user: str,
        ctx: ToolContext,
        toolbox: Toolbox,
    ) -> ChatAnswer:
        from agent.llm import ModelUnavailable, parse_json_answer
        from agent.triage import prompts_for

        facts = json.dumps(v.model_dump(mode="json", exclude={"created_at"}), indent=1)
        system, _ = prompts_for(ctx)
        prompt = render(
            "chat.md.j2",
            incident_id=v.incident_id,
            service=v.service,
            facts=facts,
            question=question,
            asker=actor(user),
        )
        try:
            run = loop.run(system, prompt, toolbox)
        except ModelUnavailable as exc:
            return ChatAnswer("", "offline", f"the model is unavailable ({exc})")
        parsed = parse_json_answer(run.final_text)
        answer = str(parsed.get("summary") or "") if parsed else run.final_text
        answer = redact(answer.strip())
        if not answer:
            return ChatAnswer("", "offline", "the model gave no answer")
        seen = [facts] + [
            str(block.get("content", ""))
            for m in run.messages
            if m["role"] == "user" and isinstance(m["content"], list)
            for block in m["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]
        unfounded = unfounded_numbers(answer, "\n".join(seen))
        if unfounded:
            return ChatAnswer(
                "",
                "offline",
                "the model's answer cited numbers found neither in the incident nor in a "
                "tool result, so this answer is from the record",
                tuple(unfounded[:20]),
            )
        return ChatAnswer(escape(cut(answer, 2900)), "llm")
