"""A runbook written by the model from the same facts, kept only if it validates as a runbook,
claims nothing the plain one does not, and cites no number, time or file the facts do not
hold; otherwise the plain one, with the reason.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from agent.errors import VigilError
from agent.guard import GuardPolicy
from agent.runbook_facts import ServiceFacts
from agent.runbook_plain import plain_runbook
from agent.runbooks import READ_TOOLS, Runbook, RunbookError, parse_runbook_text, runbook_text

if TYPE_CHECKING:
    import anthropic

    from agent.llm import ModelSettings


class GeneratedRunbook(BaseModel):
    mode: Literal["llm", "deterministic"]
    text: str
    runbook: Runbook
    fallback_reason: str | None = None


class RunbookRejected(VigilError):
    """The model's runbook cannot be used; the message says why."""


_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
# A number, also when a unit follows ("4h"); not inside a name ("p95", "v2").
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\d])")
_NOT_NUMBERS = re.compile(r"(?mi)^\s*\d+\.\s|\b[45]xx\b")  # list items, status classes
_PATH = re.compile(r"(?<![\w/.-])(?:[\w.-]+/)+[\w.-]+\.[A-Za-z0-9]{1,8}\b")


def _numbers(text: str) -> set[float]:
    return {float(n) for n in _NUMBER.findall(_NOT_NUMBERS.sub(" ", _TIMESTAMP.sub(" ", text)))}


def _ungrounded(text: str, facts_text: str) -> str | None:
    """The first time, file or number in `text` that the facts do not hold, if any."""
    for stamp in _TIMESTAMP.findall(text):
        if stamp not in facts_text:
            return f"time {stamp} is not in the facts"
    for path in _PATH.findall(text):
        if path not in facts_text:
            return f"file {path} is not in the facts"
    allowed = _numbers(facts_text) | {0.0, 1.0, 2.0, 3.0}
    for number in sorted(_numbers(text) - allowed):
        return f"number {number:g} is not in the facts"
    return None


def _document(answer: str) -> str:
    """The runbook in the model's answer: fences and chatter around it removed."""
    fenced = re.search(r"```(?:markdown|md|yaml)?\n(.*?)```", answer, re.DOTALL)
    text = fenced.group(1) if fenced else answer
    start = re.search(r"(?m)^---[ \t]*$", text)
    return text[start.start() :].strip() + "\n" if start else text


def check_model_runbook(
    answer: str, plain: Runbook, facts: ServiceFacts, policy: GuardPolicy
) -> tuple[str, Runbook]:
    """The model's runbook if it is usable; else RunbookRejected saying why."""
    text = _document(answer)
    try:
        book = parse_runbook_text(text, "<model answer>", policy=policy)
    except RunbookError as exc:
        raise RunbookRejected(f"it does not validate: {exc}") from None
    if (book.name, book.service) != (plain.name, plain.service):
        raise RunbookRejected(f"it names {book.name!r} for {book.service!r}, not {plain.name!r}")
    if book.allows_pause and not plain.allows_pause:
        raise RunbookRejected("it sets allows_pause, which the plain runbook does not")
    if extra := sorted(set(book.alerts) - set(plain.alerts)):
        raise RunbookRejected(f"alert {extra[0]} is not in the service's history")
    if extra := sorted({k.value for k in book.signals} - {k.value for k in plain.signals}):
        raise RunbookRejected(f"signal kind {extra[0]} is not configured for the service")
    names = {s.name for s in facts.signals}
    for step in book.diagnostic_steps:
        query = step.arguments.get("query")
        if step.tool == "query_metrics" and not (query in names or str(query).startswith("{")):
            raise RunbookRejected(f"step {step.id} queries {query!r}, not a configured signal")
    facts_text = json.dumps(facts.model_dump(mode="json")) + "\n" + runbook_text(plain)
    if (why := _ungrounded(text, facts_text)) is not None:
        raise RunbookRejected(why)
    return text, book


def _history_for_model(facts: ServiceFacts) -> list[dict[str, Any]]:
    return [i.model_dump(mode="json") for i in facts.incidents]


def _ask(client: anthropic.Anthropic, settings: ModelSettings, system: str, user: str) -> str:
    response = client.messages.create(
        model=settings.model,
        max_tokens=max(settings.max_output_tokens, 4096),
        system=system,
        messages=[{"role": "user", "content": user}],
        timeout=settings.request_timeout_s,
    )
    return "".join(b.text for b in response.content if b.type == "text")


def generate_runbook(
    facts: ServiceFacts,
    policy: GuardPolicy | None = None,
    *,
    client: anthropic.Anthropic | None = None,
    settings: ModelSettings | None = None,
    offline_reason: str = "no model configured",
    organisation: str = "this organisation",
) -> GeneratedRunbook:
    """A runbook for the facts' service: the model's when it is usable, else the plain one."""
    policy = policy or GuardPolicy()
    plain = plain_runbook(facts, policy)
    plain_text = runbook_text(plain)
    if client is None:
        return GeneratedRunbook(
            mode="deterministic", text=plain_text, runbook=plain, fallback_reason=offline_reason
        )
    import anthropic

    from agent.llm import ModelSettings
    from agent.prompts import render

    settings = settings or ModelSettings()
    config = facts.model_dump(mode="json", exclude={"incidents"})
    values: dict[str, Any] = {
        "organisation": organisation,
        "service": facts.service,
        "environment": facts.environment,
        "tools": list(READ_TOOLS),
        "pause_confidence": policy.pause_confidence,
        "min_confidence": policy.min_confidence,
        "config": config,
        "history": _history_for_model(facts),
        "skeleton": plain_text,
    }
    system = render("runbook_generate.md.j2", part="system", **values)
    user = render("runbook_generate.md.j2", part="user", **values)
    try:
        answer = _ask(client, settings, system, user)
        text, book = check_model_runbook(answer, plain, facts, policy)
    except anthropic.APIError as exc:
        why = f"the model is unavailable ({type(exc).__name__}: {exc})"
    except RunbookRejected as exc:
        why = f"the model's runbook was rejected: {exc}"
    else:
        return GeneratedRunbook(mode="llm", text=text, runbook=book)
    return GeneratedRunbook(
        mode="deterministic",
        text=plain_text,
        runbook=plain,
        fallback_reason=f"{why}; wrote the plain runbook from the same facts",
    )


def model_client(*, offline: bool) -> tuple[anthropic.Anthropic | None, str]:
    """The official SDK's client when a key is set (and not --offline); else why not."""
    import os

    if offline:
        return None, "offline requested"
    if not os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return None, "no ANTHROPIC_API_KEY set"
    import anthropic

    from agent.llm import ModelSettings

    settings = ModelSettings()
    # The SDK retries 429/5xx/overloaded itself, with backoff.
    return anthropic.Anthropic(max_retries=2, timeout=settings.request_timeout_s), ""
