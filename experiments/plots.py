"""Figures of the studies, written as PNG files with labelled axes and legends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)
import numpy as np  # noqa: E402


def _panels(count: int, width: float = 4.2, height: float = 3.4) -> tuple[Any, np.ndarray]:
    figure, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return figure, axes[0]


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def stress_test_figures(
    data: dict[str, dict[str, np.ndarray]], labeler_names: tuple[str, ...], focus: str, folder: Path
) -> dict[str, str]:
    """Draw regret over time, weights over time and learned reports; return file names by figure."""
    mechanisms = list(data)

    figure, axes = _panels(len(mechanisms))
    for axis, mechanism in zip(axes, mechanisms):
        curves = data[mechanism]
        slots = np.arange(1, len(curves["regret_truthful"]) + 1)
        axis.plot(slots, curves["regret_truthful"], label="all truthful")
        axis.plot(slots, curves["regret_deviation"], label=f"{focus} deviates (PPO)")
        axis.axhline(0.0, color="grey", linewidth=0.6)
        axis.set_title(mechanism)
        axis.set_xlabel("slot t")
        axis.set_ylabel("cumulative regret R_t (loss units)")
        axis.legend(fontsize=8)
    _save(figure, folder / "regret.png")

    figure, axes = _panels(len(mechanisms))
    for axis, mechanism in zip(axes, mechanisms):
        curves = data[mechanism]
        slots = np.arange(1, curves["weights_truthful"].shape[0] + 1)
        for i, name in enumerate(labeler_names):
            line = axis.plot(slots, curves["weights_truthful"][:, i], label=name)[0]
            if name == focus:
                axis.plot(
                    slots, curves["weights_deviation"][:, i], linestyle="--", color=line.get_color(),
                    label=f"{name}, deviating",
                )
        axis.set_title(mechanism)
        axis.set_xlabel("slot t")
        axis.set_ylabel("weight w_i,t (mean over episodes)")
        axis.set_ylim(0.0, 1.0)
        if len(labeler_names) <= 12:
            axis.legend(fontsize=7)
    _save(figure, folder / "weights.png")

    figure, axes = _panels(len(mechanisms))
    for axis, mechanism in zip(axes, mechanisms):
        curves = data[mechanism]
        asked = curves["asked"].astype(bool)
        preference, report = curves["preference"][asked], curves["report"][asked]
        axis.scatter(preference, report, s=3, alpha=0.3, label="learned (PPO)")
        if "closed_form_report" in curves:
            axis.scatter(
                preference, curves["closed_form_report"][asked], s=2, color="black", alpha=0.5,
                label="closed-form myopic",
            )
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="truthful")
        axis.set_title(f"{mechanism}: {focus}")
        axis.set_xlabel("own preference p")
        axis.set_ylabel("report r")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=8)
    _save(figure, folder / "reports.png")

    return {"regret over time": "regret.png", "weights over time": "weights.png", "report against preference": "reports.png"}
