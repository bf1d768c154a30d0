"""A `sleep` for retry tests: records every wait instead of waiting."""

from __future__ import annotations


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
