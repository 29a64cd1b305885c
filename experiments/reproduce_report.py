"""Figures, CSV files and report.md of the regret study (:mod:`experiments.reproduce`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)
import numpy as np  # noqa: E402

from experiments.reproduce import BOOTSTRAP_SAMPLES  # noqa: E402

HEADLINE_MECHANISMS = ("mean", "median", "online_weighted")


def _value(estimate: Any, field: str) -> float:
    return estimate[field] if isinstance(estimate, dict) else getattr(estimate, field)


def _band(axis: Any, x: Any, estimates: list[Any], label: str) -> None:
    mean = np.array([_value(e, "mean") for e in estimates])
    low = np.array([_value(e, "low") for e in estimates])
    high = np.array([_value(e, "high") for e in estimates])
    line = axis.plot(x, mean, marker="o", markersize=3, label=label)[0]
    axis.fill_between(x, low, high, color=line.get_color(), alpha=0.2)


def _synthetic(scenarios: dict[str, Any]) -> dict[str, Any]:
    return {name: cells for name, cells in scenarios.items() if len(next(iter(cells.values()))["horizons"]) > 1}


def write_figures(summary: dict[str, Any], folder: Path) -> dict[str, str]:
    """Draw the study's figures; return file names by title."""
    figures: dict[str, str] = {}
    scenarios = summary["scenarios"]
    for name, cells in _synthetic(scenarios).items():
        slug = name.replace(" ", "").replace(",", "_").replace("=", "")
        figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
        for mechanism, cell in cells.items():
            horizons = np.array(cell["horizons"])
            _band(left, horizons, cell["regret"], mechanism)
            if "regret_curve" in cell:
                _band(middle, np.array(cell["curve_slots"]), cell["regret_curve"], mechanism)
            if "best_weight_curve" in cell:
                _band(right, np.array(cell["curve_slots"]), cell["best_weight_curve"], mechanism)
        left.set_xscale("log")
        left.set_yscale("symlog", linthresh=1.0)
        left.set_xlabel("horizon T (slots)")
        left.set_ylabel("regret R_T (loss units)")
        left.set_title(f"{name}: regret against T")
        middle.set_xscale("log")
        middle.set_yscale("symlog", linthresh=1.0)
        middle.set_xlabel("slot t (longest horizon)")
        middle.set_ylabel("cumulative regret R_t (loss units)")
        middle.set_title(f"{name}: regret over time")
        right.set_xscale("log")
        right.set_ylim(0, 1)
        right.set_xlabel("slot t (longest horizon)")
        right.set_ylabel("weight of the most accurate labeler")
        right.set_title(f"{name}: weight of the best labeler")
        for axis in (left, middle, right):
            axis.legend(fontsize=7)
        figure.tight_layout()
        file_name = f"regret_{slug}.png"
        figure.savefig(folder / file_name, dpi=110)
        plt.close(figure)
        figures[f"regret, {name}"] = file_name

    data = {name: cells for name, cells in scenarios.items() if name in summary["data_labelers"]}
    if data:
        figure, axes = plt.subplots(1, len(data), figsize=(4.8 * len(data), 4.2), squeeze=False)
        for axis, (name, cells) in zip(axes[0], data.items()):
            labelers = summary["data_labelers"][name]
            weights = np.array([cells[m]["final_weights"] for m in cells])
            top = np.argsort(-weights.max(axis=0))[:8]
            positions = np.arange(len(top))
            width = 0.8 / len(cells)
            for index, mechanism in enumerate(cells):
                axis.bar(positions + index * width, weights[index, top], width, label=mechanism)
            axis.set_xticks(positions + 0.4 - width / 2)
            axis.set_xticklabels([labelers[i][:14] for i in top], rotation=60, ha="right", fontsize=7)
            axis.set_ylabel("final weight (mean over replicates)")
            axis.set_title(name, fontsize=9)
        axes[0][0].legend(fontsize=6)
        figure.tight_layout()
        figure.savefig(folder / "real_data_weights.png", dpi=110)
        plt.close(figure)
        figures["final weights on real data"] = "real_data_weights.png"
    return figures


def write_csv(summary: dict[str, Any], folder: Path) -> None:
    """Write every curve as CSV: regret against T, regret over time, weight of the best labeler."""
    with (folder / "regret_vs_horizon.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["scenario", "mechanism", "T", "regret_mean", "regret_low", "regret_high",
                         "regret_per_T", "regret_per_sqrt_T"])
        for scenario, cells in summary["scenarios"].items():
            for mechanism, cell in cells.items():
                for t, r, rt, rs in zip(cell["horizons"], cell["regret"], cell["regret_per_t"], cell["regret_per_sqrt_t"]):
                    writer.writerow([scenario, mechanism, t, _value(r, "mean"), _value(r, "low"), _value(r, "high"),
                                     _value(rt, "mean"), _value(rs, "mean")])
    for file_name, key in (("regret_over_time.csv", "regret_curve"), ("best_weight_over_time.csv", "best_weight_curve")):
        with (folder / file_name).open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["scenario", "mechanism", "slot", "mean", "low", "high"])
            for scenario, cells in summary["scenarios"].items():
                for mechanism, cell in cells.items():
                    for slot, estimate in zip(cell.get("curve_slots", []), cell.get(key, [])):
                        writer.writerow([scenario, mechanism, slot, _value(estimate, "mean"), _value(estimate, "low"),
                                         _value(estimate, "high")])
    with (folder / "real_data_weights.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["data set", "mechanism", "labeler", "final_weight"])
        for name, labelers in summary["data_labelers"].items():
            for mechanism, cell in summary["scenarios"][name].items():
                for labeler, weight in zip(labelers, cell["final_weights"]):
                    writer.writerow([name, mechanism, labeler, weight])


def _number(value: float, digits: int) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def _fmt(estimate: Any, digits: int = 3) -> str:
    mean, low, high = (_value(estimate, field) for field in ("mean", "low", "high"))
    return f"{_number(mean, digits)} [{_number(low, digits)}, {_number(high, digits)}]"


def slope_text(cell: dict[str, Any], key: str = "slope") -> str:
    """Return a fitted slope with its interval, or why none was fitted."""
    slope = cell.get(key)
    if slope is None:
        return "n/a"
    if slope["slope"] is None:
        return f"not fitted: {slope['reason']}"
    return f"{slope['slope']:.2f} [{slope['low']:.2f}, {slope['high']:.2f}]"


def headline_table(summary: dict[str, Any], scenario: str, mechanisms: tuple[str, ...] | None = None) -> list[str]:
    """Return the Markdown table of R_T / T, R_T / sqrt(T) at the largest T and the slope.

    Under platform-sampled partial feedback two more columns give the regret against each
    labeler on the slots in which it was asked (sleeping experts).
    """
    cells = summary["scenarios"][scenario]
    names = [m for m in (mechanisms or tuple(cells)) if m in cells]
    largest = cells[names[0]]["horizons"][-1]
    sampled = "asked_regret" in cells[names[0]]
    header = f"| mechanism | R_T / T at T = {largest:,} | R_T / sqrt(T) at T = {largest:,} | log-log slope [95 % CI] |"
    rule = "|---|---|---|---|"
    if sampled:
        header += " asked-slot R_T / sqrt(T) | asked-slot slope [95 % CI] |"
        rule += "---|---|"
    lines = [header, rule]
    for mechanism in names:
        cell = cells[mechanism]
        row = f"| {mechanism} | {_fmt(cell['regret_per_t'][-1])} | {_fmt(cell['regret_per_sqrt_t'][-1])} | {slope_text(cell)} |"
        if sampled:
            row += f" {_fmt(cell['asked_regret_per_sqrt_t'][-1])} | {slope_text(cell, 'asked_slope')} |"
        lines.append(row)
    return lines


def render(record: dict[str, Any], settings: Any) -> str:
    """Render report.md."""
    summary = record["summary"]
    scenarios = summary["scenarios"]
    prov = record["provenance"]
    lines = [
        "# Regret study",
        "",
        f"Command: `{prov['command']}`",
        "",
        f"Truthful labelers. Each cell is the mean over {settings.replicates} independent episodes (replicates, "
        f"drawn from seed {settings.seed}) with a 95 % Student-t interval. Horizons T = "
        f"{', '.join(f'{t:,}' for t in settings.horizons)}; each rule's learning rate is tuned to T by its default. "
        "Regret R_T is measured against the best labeler's truthful feedback in hindsight (under data replay, each "
        "labeler only on the items it labelled). Slopes are least-squares fits of log(mean R_T) on log T with a "
        f"bootstrap interval ({BOOTSTRAP_SAMPLES:,} resamples of the replicates). Linear regret has slope 1; "
        "O(sqrt(T)) regret has slope 1/2.",
        "",
    ]
    for name in _synthetic(scenarios):
        lines += [f"## {name}", ""]
        lines += headline_table(summary, name)
        lines.append("")
        best_rows = []
        for mechanism, cell in scenarios[name].items():
            weights = np.array(cell["final_weights"])
            if "first_exceed" not in cell or np.allclose(weights, 1.0 / len(weights)):
                continue  # Uniform weights: the rule does not learn.
            parts = []
            for entry in cell["first_exceed"].values():
                if entry["slot"] is None:
                    parts.append(f"never (0 of {entry['replicates']})")
                else:
                    parts.append(f"{_fmt(entry['slot'])} ({entry['reached']} of {entry['replicates']})")
            best_rows.append(f"| {mechanism} | {' | '.join(parts)} |")
        if best_rows:
            cell = next(iter(scenarios[name].values()))
            lines += [
                f"Weight of the most accurate labeler (labeler_{cell['best_labeler']}) over the longest horizon: "
                "first slot at which it exceeds 0.5 and 0.9 [95 % CI], over the replicates that reached it "
                "(count in brackets). Rules with uniform weights are left out.",
                "",
                "| mechanism | first slot with weight > 0.5 | first slot with weight > 0.9 |",
                "|---|---|---|",
                *best_rows,
                "",
            ]
        negatives = [m for m, c in scenarios[name].items() if c.get("slope", {}).get("slope", 0) is None]
        if negatives:
            lines += [
                f"Regret turns negative for {', '.join(negatives)}: the weighted aggregate beats every single "
                "labeler in hindsight, so no slope is fitted there.",
                "",
            ]
    data = [name for name in scenarios if name in summary["data_labelers"]]
    if data:
        lines += ["## Real data", "", "| data set | mechanism | slots | regret R_T [95 % CI] | largest final weight |",
                  "|---|---|---|---|---|"]
        for name in data:
            labelers = summary["data_labelers"][name]
            for mechanism, cell in scenarios[name].items():
                weights = np.array(cell["final_weights"])
                top = int(np.argmax(weights))
                lines.append(
                    f"| {name} | {mechanism} | {cell['horizons'][-1]} | {_fmt(cell['regret'][-1])} | "
                    f"{labelers[top]} ({weights[top]:.3f}) |"
                )
        lines.append("")
    if not data:
        lines += ["## Real data", "", "Not run: no --data folder was given.", ""]
    lines += ["## Figures", "", *[f"![{title}]({path})" for title, path in record["figures"].items()], ""]
    git = prov["git"]
    lines += [
        "## Provenance",
        "",
        f"- git commit: {git['commit']}{' (uncommitted changes)' if git['dirty'] else ''}",
        f"- packages: {', '.join(f'{k} {v}' for k, v in prov['packages'].items())}",
        f"- run time: {record['seconds']:.0f} s on {prov['machine']['cpus']} CPUs",
        "",
    ]
    return "\n".join(lines)

