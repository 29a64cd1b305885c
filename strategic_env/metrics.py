"""Summary statistics of the benchmark: means with confidence intervals over seeds."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over independent runs with a two-sided confidence interval (Student t)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "confidence": self.confidence}

    def format(self, digits: int = 4) -> str:
        """Return ``mean [low, high]`` with ``digits`` significant digits."""
        return f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


def mean_ci(values: np.ndarray | list[float], confidence: float = 0.95) -> Estimate:
    """Return the mean of independent values with a Student-t confidence interval.

    With one value the interval is that value alone (no spread can be estimated).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(values.mean())
    if values.size == 1:
        return Estimate(mean, mean, mean, 1, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return Estimate(mean, mean - half, mean + half, int(values.size), confidence)
