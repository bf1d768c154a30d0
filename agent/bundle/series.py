"""Signal series held as sorted numpy arrays, one per (signal, cohort)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """Samples of one signal in one cohort, sorted by time; gaps are simply absent."""

    t: FloatArray
    v: FloatArray

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[float, float]]) -> Series:
        rows = sorted(pairs)
        t = np.fromiter((p[0] for p in rows), dtype=np.float64, count=len(rows))
        v = np.fromiter((p[1] for p in rows), dtype=np.float64, count=len(rows))
        keep = ~np.isnan(v)
        return cls(t[keep], v[keep])

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def until(self, moment: float) -> Series:
        """Samples at or before `moment` (no look-ahead)."""
        end = int(np.searchsorted(self.t, moment, side="right"))
        return Series(self.t[:end], self.v[:end])

    def between(self, start: float, end: float) -> Series:
        """Samples with start <= t < end."""
        lo = int(np.searchsorted(self.t, start, side="left"))
        hi = int(np.searchsorted(self.t, end, side="left"))
        return Series(self.t[lo:hi], self.v[lo:hi])


class SignalData(Mapping[str, Mapping[str, Series]]):
    """signal name → cohort ("" for the whole service, "baseline", "canary") → Series."""

    def __init__(self, data: Mapping[str, Mapping[str, Series]]) -> None:
        self._data = {name: dict(cohorts) for name, cohorts in data.items()}

    def __getitem__(self, name: str) -> Mapping[str, Series]:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def series(self, name: str, cohort: str = "") -> Series | None:
        return self._data.get(name, {}).get(cohort)

    def until(self, moment: float) -> SignalData:
        """Every series cut at `moment`: what a judge may see at that time."""
        return SignalData(
            {n: {c: s.until(moment) for c, s in cs.items()} for n, cs in self._data.items()}
        )

    @property
    def has_cohorts(self) -> bool:
        return any("canary" in cs for cs in self._data.values())
