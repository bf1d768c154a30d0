"""The deployed change as `git diff` output: a culprit (if any) among harmless edits."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from evals.sim.noise import Rng

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str | None  # None: a new file
    after: str
    first_line: int = 1  # line of `before` within the old file
    section: str = ""


@dataclass(frozen=True)
class _Harmless:
    path: str
    before: str | None
    after: str
    section: str = ""


_HARMLESS = (
    _Harmless(
        "README.md",
        "## Running locally\n\n    make dev\n\nThe service listens on port 8080.",
        "## Running locally\n\n    make dev\n\nThe service listens on port 8080; metrics are served"
        " on port 9090 at /metrics.",
    ),
    _Harmless(
        "config/{svc}.yaml",
        "features:\n  new_search_ranking: false\n  bulk_export: true\n",
        "features:\n  new_search_ranking: false\n  bulk_export: true\n  receipts_v2: false\n",
        "",
    ),
    _Harmless(
        "requirements.txt",
        "httpx==0.27.0\npsycopg[binary]==3.1.18\npydantic==2.7.1\nstructlog==24.1.0",
        "httpx==0.27.2\npsycopg[binary]==3.1.18\npydantic==2.7.4\nstructlog==24.1.0",
    ),
    _Harmless(
        "tests/test_{m}_api.py",
        'def test_health(client):\n    assert client.get("/healthz").status_code == 200',
        'def test_health(client):\n    assert client.get("/healthz").status_code == 200\n\n\n'
        'def test_ready_reports_version(client):\n    body = client.get("/readyz").json()\n'
        '    assert body["version"]',
    ),
    _Harmless(
        "migrations/{num}_add_{m}_created_at_index.sql",
        None,
        "-- Speeds up the admin listing, which sorts by creation time.\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{m}_created_at\n"
        "    ON {m}_records (created_at DESC);",
    ),
    _Harmless(
        "src/{m}/metrics.py",
        'REQUEST_SECONDS = Histogram(\n    "http_request_duration_seconds",\n'
        '    "Request latency",\n    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),\n)',
        'REQUEST_SECONDS = Histogram(\n    "http_request_duration_seconds",\n'
        '    "Request latency",\n    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),\n)',
        "from prometheus_client import Counter, Histogram",
    ),
    _Harmless(
        "src/{m}/logging_config.py",
        """    "loggers": {{
        "{m}": {{"level": "INFO"}},
        "httpx": {{"level": "INFO"}},
    }},""",
        """    "loggers": {{
        "{m}": {{"level": "INFO"}},
        "httpx": {{"level": "WARNING"}},
    }},""",
        "LOGGING = {{",
    ),
    _Harmless(
        "src/{m}/api.py",
        """@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {{"status": "ok"}}""",
        """@router.get("/healthz")
async def healthz() -> dict[str, str]:
    \"\"\"Liveness: the process answers; dependencies are checked by /readyz.\"\"\"
    return {{"status": "ok"}}""",
        'router = APIRouter(prefix="/api/v1")',
    ),
    _Harmless(
        ".github/workflows/ci.yml",
        "    steps:\n      - uses: actions/checkout@v3\n      - uses: actions/setup-python@v4",
        "    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5",
        "jobs:",
    ),
    _Harmless(
        "CHANGELOG.md",
        "# Changelog\n\n## {previous}\n",
        "# Changelog\n\n## {version}\n\n- {note}\n\n## {previous}\n",
    ),
)
_NOTES = (
    "Faster admin listing",
    "Dependency updates",
    "Clearer health check docs",
    "Receipts v2 behind a flag",
    "Finer latency buckets",
)


def harmless_changes(
    rng: Rng, count: int, names: dict[str, str], taken: set[str]
) -> list[FileChange]:
    """`count` unrelated edits, none touching a path in `taken`."""
    values = {**names, "num": f"{int(rng.integers(12, 240)):04d}"}
    values["note"] = str(rng.choice(_NOTES))
    out: list[FileChange] = []
    for i in rng.permutation(len(_HARMLESS)):
        h = _HARMLESS[int(i)]
        path = h.path.format_map(values)
        if path in taken:
            continue
        before = None if h.before is None else h.before.format_map(values)
        first = 1 if before is None or h.path.endswith(".md") else int(rng.integers(8, 160))
        out.append(
            FileChange(
                path, before, h.after.format_map(values), first, h.section.format_map(values)
            )
        )
        taken.add(path)
        if len(out) == count:
            break
    return out


def render_diff(rng: Rng, changes: list[FileChange]) -> str:
    """git diff output for the changes, files in path order as git prints them."""
    parts = []
    for change in sorted(changes, key=lambda c: c.path):
        old_blob, new_blob = _blob(rng), _blob(rng)
        header = [f"diff --git a/{change.path} b/{change.path}"]
        if change.before is None:
            header += ["new file mode 100644", f"index 0000000..{new_blob}", "--- /dev/null"]
            old_lines: list[str] = []
        else:
            header += [f"index {old_blob}..{new_blob} 100644", f"--- a/{change.path}"]
            old_lines = change.before.strip("\n").split("\n")
        header.append(f"+++ b/{change.path}")
        new_lines = change.after.strip("\n").split("\n")
        offset = 0 if change.before is None else change.first_line - 1
        body = []
        for line in list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=3))[2:]:
            match = _HUNK.match(line)
            body.append(_shift(match, offset, change.section) if match else line)
        parts.append("\n".join(header + body))
    return "\n".join(parts) + "\n"


def _shift(match: re.Match[str], offset: int, section: str) -> str:
    a, b, c, d = match.groups()
    old_start = int(a) + offset if int(a) else 0
    new_start = int(c) + offset if int(c) else 0
    old = f"{old_start}" if b is None else f"{old_start},{b}"
    new = f"{new_start}" if d is None else f"{new_start},{d}"
    tail = f" {section}" if section else ""
    return f"@@ -{old} +{new} @@{tail}"


def _blob(rng: Rng) -> str:
    return f"{int(rng.integers(0, 16**7)):07x}"
