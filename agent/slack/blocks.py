"""Block Kit messages, built with slack_sdk's block models (which check Slack's limits).

Text that comes from the systems under investigation (alert summaries, log lines, reasons) is
escaped before it is placed in mrkdwn, so it cannot mention @channel or forge a link; our own
Markdown (the seed-002 formats) is converted to Slack's mrkdwn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from agent.links import ChangeLinks
from agent.redact import redact
from agent.slack.incidents import IncidentView
from agent.slack.records import Approval

SECTION_MAX = 2900  # Slack's limit is 3000 characters per section text
HEADER_MAX = 150
MESSAGE_MAX = 12_000  # what we put in one message (Slack allows more, people read less)

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
APPROVE, RESUME, HOLD = "vigil_approve_rollback", "vigil_resume", "vigil_hold"
TIER_ICON = {0: ":large_green_circle:", 1: ":warning:", 2: ":double_vertical_bar:", 3: ":rewind:"}
STATUS_ICON = {
    "executed": ":white_check_mark:",
    "blocked": ":no_entry:",
    "proposed": ":thought_balloon:",
}


@dataclass(frozen=True)
class Message:
    """A message: the notification text (also the fallback) and its blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.blocks:
            out["blocks"] = self.blocks
        return out


def escape(text: str) -> str:
    """Untrusted text made safe for mrkdwn: secrets redacted, and no mentions, links or
    channel pings."""
    return redact(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def who(user: str) -> str:
    """A Slack user id as a mention; anything else (e.g. `vigil`) as plain text."""
    return f"<@{user}>" if USER_ID.match(user) else escape(user)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"(?m)^#{1,6}\s+(.+?)\s*$")
_BULLET = re.compile(r"(?m)^(\s*)[-*] ")


def mrkdwn(markdown: str) -> str:
    """Our Markdown (bold, links, headings, bullets) as Slack mrkdwn."""
    text = _HEADING.sub(r"**\1**", markdown)
    text = _BOLD.sub(r"*\1*", text)
    text = _LINK.sub(r"<\2|\1>", text)
    return _BULLET.sub(r"\1• ", text)


def chunks(text: str, limit: int = SECTION_MAX) -> list[str]:
    """Split at line ends into pieces of at most `limit` characters."""
    out: list[str] = []
    current = ""
    for line in text.splitlines():
        while len(line) > limit:
            if current:
                out.append(current)
                current = ""
            out.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            out.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        out.append(current)
    return out


def _dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=cut(text, SECTION_MAX)))


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=cut(t, 2000)) for t in texts[:10]])


def text_message(text: str, *, notification: str | None = None) -> Message:
    """Plain mrkdwn text (already escaped where it holds untrusted parts); the notification
    is plain text, escaped here."""
    blocks = [section(c) for c in chunks(text)][:45]
    note = escape(notification) if notification is not None else text
    return Message(cut(note, 3000), _dicts(list(blocks)))


def document_message(markdown: str, *, title: str, note: str | None = None) -> Message:
    """A Markdown document as sections, cut to `MESSAGE_MAX` with a note saying so."""
    body = mrkdwn(markdown)
    if len(body) > MESSAGE_MAX:
        body = body[:MESSAGE_MAX].rsplit("\n", 1)[0]
        note = note or "The document was cut for Slack."
    blocks: list[Block] = [section(c) for c in chunks(body)]
    if note:
        blocks.append(context(note))
    return Message(cut(escape(title), 3000), _dicts(blocks))


# --------------------------------------------------------------------------- incidents


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def tier_text(tier: int | None, name: str | None = None) -> str:
    if tier is None:
        return ":grey_question: no verdict"
    return f"{TIER_ICON.get(tier, '')} tier {tier}" + (f" ({name})" if name else "")


def link(url: str, label: str) -> str:
    """A mrkdwn link to a URL we built (from configuration, with quoted refs and paths). The
    label must already be escaped; a URL with characters that could break out is not linked."""
    if not url.startswith(("https://", "http://")) or any(c in url for c in "<>|\n "):
        return label
    return f"<{url}|{label}>"


def triage_message(v: IncidentView, links: ChangeLinks | None = None) -> Message:
    """The parent message of an incident's thread: what Vigil concluded and did, with links
    to the deploy's change and the suspect files where the repository's address is known."""
    links = links or ChangeLinks()
    title = f"{v.alertname or 'Incident'} on {v.service}" + (
        f" ({v.environment})" if v.environment else ""
    )
    fields = [
        MarkdownTextObject(text=f"*Verdict*\n{tier_text(v.tier, v.tier_name)}"),
        MarkdownTextObject(text=f"*Caused by the deploy*\n{_yes_no(v.deploy_caused)}"),
        MarkdownTextObject(
            text="*Deploy*\n"
            + (f"`{escape(v.deploy_id)}` {escape(v.version or '')}" if v.deploy_id else "none")
        ),
        MarkdownTextObject(
            text=f"*Severity · confidence*\n{escape(v.severity or 'unknown')} · "
            + ("—" if v.confidence is None else f"{v.confidence:.2f}")
        ),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=cut(title, HEADER_MAX))),
        SectionBlock(fields=fields),
        section(f"*Summary*\n{escape(v.summary) or '—'}"),
    ]
    if v.evidence:
        lines = "\n".join(f"• {escape(cut(e, 400))}" for e in v.evidence[:8])
        blocks.append(section(f"*Evidence*\n{lines}"))
    if v.suspect_files:
        first, *rest = v.suspect_files

        def path(p: str) -> str:
            return link(links.files[p], f"`{escape(p)}`") if p in links.files else f"`{escape(p)}`"

        where = f" in `{escape(v.deploy_id)}`" if v.deploy_id else ""
        if links.compare:
            where += f" ({link(links.compare, 'compare the versions')})"
        text = f"*Suspect change*{where}\n{path(first)}"
        if rest:
            text += "\nthen " + ", ".join(path(p) for p in rest[:4])
        blocks.append(section(text))
    elif links.compare and v.deploy_id:
        compare = link(links.compare, "compare the versions")
        blocks.append(section(f"*Change* `{escape(v.deploy_id)}`: {compare}"))
    if v.actions:
        lines = "\n".join(
            f"{STATUS_ICON.get(a.status, '•')} *{escape(a.name)}* {escape(a.status)}"
            + (f" by {escape(a.actor)}" if a.actor else "")
            + (f": {escape(cut(a.reason, 300))}" if a.reason else "")
            for a in v.actions[:10]
        )
        blocks.append(section(f"*Actions*\n{lines}"))
    else:
        blocks.append(section("*Actions*\nnone"))
    notes = [f"`{escape(v.incident_id)}`"]
    if v.mode:
        notes.append("offline planner" if v.mode == "offline" else escape(v.mode))
    if v.escalated:
        notes.append("a human was paged")
    if v.missing_sources:
        notes.append(
            ":eyes: not seen: "
            + escape(", ".join(v.missing_sources))
            + " (the conclusion does not account for them)"
        )
    if v.next_steps:
        notes.append("next: " + escape(cut(v.next_steps[0], 300)))
    blocks.append(context(" · ".join(notes)))
    text = f"{title}: {tier_text(v.tier, v.tier_name)} — {cut(v.summary, 200)}"
    return Message(cut(escape(text), 3000), _dicts(blocks))


def approval_message(a: Approval) -> Message:
    """The question asked when a rollout is paused; once decided, who decided and no buttons."""
    name = f"{a.service} {a.version or ''}".strip()
    rollout = f"The rollout of {escape(name)} (`{escape(a.deploy_id)}`)"
    head = (
        f":double_vertical_bar: *{rollout} is paused.* A human decides what happens next."
        if a.decision is None
        else f":ballot_box_with_check: *{rollout} was paused; decided: {escape(a.decision)}.*"
    ) + f"\n{escape(cut(a.reason, 1200))}"
    blocks: list[Block] = [section(head)]
    if a.decision is None:
        target = a.previous_version or "the previous version"
        blocks.append(
            ActionsBlock(
                block_id=f"approval:{cut(a.deploy_id, 200)}",
                elements=[
                    ButtonElement(
                        text="Approve rollback",
                        action_id=APPROVE,
                        value=a.deploy_id,
                        style="danger",
                        confirm=ConfirmObject(
                            title="Roll back?",
                            text=f"Roll {cut(name, 100)} back to {cut(target, 100)}? The policy "
                            "guard still decides.",
                            confirm="Roll back",
                            deny="Cancel",
                        ),
                    ),
                    ButtonElement(
                        text="Resume", action_id=RESUME, value=a.deploy_id, style="primary"
                    ),
                    ButtonElement(text="Hold", action_id=HOLD, value=a.deploy_id),
                ],
            )
        )
    notes = list(a.notes)
    if a.decision is not None:
        notes.append(f"*Decided: {a.decision}* by {who(a.decided_by or 'unknown')}")
    if notes:
        blocks.append(context(*notes[-10:]))
    text = f"The rollout of {name} ({a.deploy_id}) is paused: approve a rollback, resume or hold"
    if a.decision is not None:
        text = f"{name} ({a.deploy_id}): {a.decision} decided by {a.decided_by}"
    return Message(escape(text), _dicts(blocks))


def listing(title: str, lines: list[str], *, empty: str) -> Message:
    body = "\n".join(lines) if lines else empty
    return text_message(f"*{escape(title)}*\n{body}", notification=title)
