"""`vigil demo`: the offline story of the judge on the bundled example suite."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from agent.bundle import iter_bundles, read_bundle
from agent.errors import VigilError
from agent.judge.core import judge
from agent.judge.render import render_verdict
from agent.judge.replay import ReplayResult, replay
from agent.judge.verdict import TIER_NAMES
from agent.judge.vigil import VigilJudge


def default_suite() -> Path:
    """The committed example suite beside the package (a source checkout)."""
    return Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"


def run_demo(console: Console, suite: Path | None = None) -> int:
    """Replay every bundle of the suite, then explain one healthy, one paused, one rolled back."""
    suite = suite or default_suite()
    if not suite.is_dir():
        raise VigilError(
            f"{suite}: example suite not found; pass --suite DIR, or generate one with "
            "`python3 -m evals.simulate --seed 1 --healthy 24 --faulty 18 --out DIR`"
        )
    judge_ = VigilJudge()
    table = Table(title=f"Replaying {suite} through Vigil's judge", header_style="bold")
    for column in ("bundle", "service", "strategy", "expected", "judged", "first tier 3", "ok"):
        table.add_column(column)
    picks: dict[int, tuple[Path, ReplayResult]] = {}
    right = total = 0
    with console.status("replaying deploys…"):
        for path in iter_bundles([suite]):
            bundle = read_bundle(path, with_logs=False)
            result = replay(bundle, judge_)
            m = bundle.manifest
            expected = m.expect.tier if m.expect else None
            ok = expected is None or (
                (result.max_tier >= 2) == (expected >= 2)
                and ((result.max_tier == 3) == (expected == 3))
            )
            total += 1
            right += int(ok)
            t3 = result.first_at[3]
            delay = "-" if t3 is None else f"+{t3 - m.deploy.started_at.timestamp():.0f}s"
            table.add_row(
                m.name,
                m.service,
                m.deploy.strategy.value,
                "-" if expected is None else f"{expected} {TIER_NAMES[expected]}",
                f"{result.max_tier} {TIER_NAMES[result.max_tier]}",
                delay,
                "[green]yes[/]" if ok else "[red]no[/]",
            )
            picks.setdefault(min(result.max_tier, 3), (path, result))
    console.print(table)
    console.print(
        f"[bold]{right}/{total}[/] deploys got the right action (roll back / pause / leave alone)."
    )
    for tier in (0, 2, 3):
        if tier not in picks:
            continue
        path, result = picks[tier]
        bundle = read_bundle(path, with_logs=False)
        at = result.first_at[tier] if tier else bundle.manifest.watch_until.timestamp()
        console.rule(f"{bundle.name}: why tier {tier} ({TIER_NAMES[tier]})")
        render_verdict(console, judge(bundle, at or bundle.manifest.watch_until.timestamp()))
    return 0 if right == total else 1
