"""Small pieces the HTTP backends share."""

from __future__ import annotations


def header_seconds(value: str | None) -> float | None:
    """A header holding seconds (`Retry-After`, GitHub's `X-RateLimit-Reset`), never negative;
    None when absent or not a number (a `Retry-After` HTTP date: the usual backoff applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
