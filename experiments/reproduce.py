"""Regret study: how each mechanism's regret grows with the horizon T, with truthful labelers.

For every mechanism and scenario the study plays R independent episodes (replicates) of each
horizon T on the batched core, with each rule's learning rate tuned to that T as its defaults
do, and records

* the regret R_T against the best labeler in hindsight, as R_T / T and R_T / sqrt(T);
* the fitted slope of log R_T against log T, with a bootstrap interval over replicates,
  where the mean regret stays positive (a weighted aggregate can beat every single labeler,
  and then regret turns negative and no slope is fitted);
* the cumulative regret curve R_t and the weight of the most accurate labeler over the
  slots of the longest horizon, and the first slot at which that weight exceeds 0.5 and 0.9.

Linear regret means slope 1 and R_T / T settling at a positive constant; O(sqrt(T)) regret
means slope 1/2 and R_T / sqrt(T) bounded. Replays of real data sets give the regret and the
final weights of every mechanism over the data set's length.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from experiments.parallel import map_with_progress
from experiments.provenance import prepare_output, provenance, write_json, write_text
from strategic_env.config import GameConfig, preset as make_preset
from strategic_env.datasets import load_pandalm, load_snow_rte, load_snow_valence
from strategic_env.game import StrategicFeedbackGame
from strategic_env.mechanisms import available, resolve
from strategic_env.metrics import mean_ci
from strategic_env.preferences import LabelTable, ReplaySource

logger = logging.getLogger(__name__)

FULL_HORIZONS = tuple(int(round(10**e)) for e in np.arange(2.0, 5.01, 0.5))  # 100 ... 100,000
QUICK_HORIZONS = (100, 316, 1000)
CURVE_POINTS = 60
BOOTSTRAP_SAMPLES = 2000
WEIGHT_THRESHOLDS = (0.5, 0.9)


@dataclasses.dataclass(frozen=True)
class RegretTask:
    """One mechanism on one scenario over several horizons."""

    scenario: str
    config: GameConfig
    mechanism: str
    horizons: tuple[int, ...]
    replicates: int
    seed: int
    table: LabelTable | None = None


def best_labeler(config: GameConfig, table: LabelTable | None) -> int | None:
    """Return the most accurate labeler: least expected loss, or least mean loss on a data set."""
    if table is not None:
        return int(np.argmin(table.mean_loss()))
    if not config.fixed_types:
        return None
    sigma = np.asarray(config.noise_sigma)
    bias = np.asarray(config.bias) if config.bias is not None else np.zeros((config.n_labelers, 1))
    return int(np.argmin(sigma**2 + np.mean(bias**2, axis=1)))


def checkpoints(horizon: int) -> np.ndarray:
    """Return about CURVE_POINTS log-spaced slots in 1..horizon, always ending at horizon."""
    points = np.unique(np.round(np.logspace(0, math.log10(horizon), CURVE_POINTS)).astype(int))
    return points[(points >= 1) & (points <= horizon)]


def run_regret_task(task: RegretTask) -> dict[str, Any]:
    """Play the task's episodes; return per-horizon regrets and the longest horizon's curves."""
    best = best_labeler(task.config, task.table)
    sampled = task.table is None and task.config.feedback_per_slot is not None
    out: dict[str, Any] = {
        "scenario": task.scenario,
        "mechanism": task.mechanism,
        "best_labeler": best,
        "sampled": sampled,
        "horizons": {},
    }
    started = time.perf_counter()
    for index, horizon in enumerate(task.horizons):
        config = task.config.replace(horizon=horizon, mechanism=task.mechanism)
        source = ReplaySource(task.table) if task.table is not None else None
        game = StrategicFeedbackGame(config, batch_size=task.replicates, source=source, compute_utilities=False)
        game.reset(np.random.SeedSequence([task.seed, index]))
        longest = index == len(task.horizons) - 1
        marks = checkpoints(game.horizon) if longest else np.array([game.horizon])
        regret_curve = np.zeros((len(marks), task.replicates))
        weight_curve = np.zeros((len(marks), task.replicates))
        trace_best = longest and best is not None
        # The best labeler's weight after every slot (T x B floats), for the first slot above a threshold.
        best_weights = np.empty((game.horizon if trace_best else 0, task.replicates))
        mark = 0
        while not game.done:
            game.step(game.preferences)
            if trace_best:
                best_weights[game.t - 1] = game.weights[:, best]
            if game.t == marks[mark]:
                regret_curve[mark] = game.regret()
                if best is not None:
                    weight_curve[mark] = game.weights[:, best]
                mark = min(mark + 1, len(marks) - 1)
        entry = {
            "horizon": game.horizon,
            "regret": game.regret().tolist(),
            "asked_regret": game.asked_regret().tolist(),
            "final_weights": game.weights.mean(axis=0).tolist(),
            "final_weights_all": game.weights.tolist(),
            "platform_loss_per_slot": (game.cumulative_platform_loss / game.horizon).tolist(),
        }
        if longest:
            entry["curve_slots"] = marks.tolist()
            entry["regret_curve"] = regret_curve.tolist()
            if best is not None:
                entry["best_weight_curve"] = weight_curve.tolist()
                entry["first_exceed"] = {}
                for threshold in WEIGHT_THRESHOLDS:
                    above = best_weights > threshold
                    first = np.where(above.any(axis=0), above.argmax(axis=0) + 1, -1)
                    entry["first_exceed"][str(threshold)] = first.tolist()
        out["horizons"][str(game.horizon)] = entry
    out["seconds"] = time.perf_counter() - started
    return out


def fit_slope(horizons: np.ndarray, regrets: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """Fit log(mean R_T) = a + slope log T; bootstrap the slope over replicates.

    ``regrets`` has shape (horizons, replicates). Returns ``slope`` None with a reason when a
    mean regret is not positive.
    """
    means = regrets.mean(axis=1)
    if np.any(means <= 0):
        negative = [int(t) for t, m in zip(horizons, means) if m <= 0]
        return {"slope": None, "reason": f"mean regret is not positive at T = {negative}"}
    x = np.log(horizons)
    slope = float(np.polyfit(x, np.log(means), 1)[0])
    replicates = regrets.shape[1]
    samples = []
    skipped = 0
    for _ in range(BOOTSTRAP_SAMPLES):
        pick = rng.integers(0, replicates, size=replicates)
        boot = regrets[:, pick].mean(axis=1)
        if np.any(boot <= 0):
            skipped += 1
            continue
        samples.append(np.polyfit(x, np.log(boot), 1)[0])
    low, high = np.percentile(samples, [2.5, 97.5]) if samples else (float("nan"), float("nan"))
    return {"slope": slope, "low": float(low), "high": float(high), "bootstrap_skipped": skipped}


@dataclasses.dataclass(frozen=True)
class ReproduceSettings:
    """Settings of the regret study: mechanisms, horizons, replicates, seed, data and workers."""

    mechanisms: tuple[str, ...] = ()
    horizons: tuple[int, ...] = FULL_HORIZONS
    replicates: int = 20
    seed: int = 0
    partial_horizons: tuple[int, ...] = FULL_HORIZONS
    data_root: str | None = None
    workers: int = 2

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"invalid workers={self.workers}: expected at least 1")
        if self.replicates < 2:
            raise ValueError(f"invalid replicates={self.replicates}: an interval needs at least 2")
        if not self.horizons or min(self.horizons) < 1:
            raise ValueError(f"invalid horizons={self.horizons}: expected positive slot counts")


def synthetic_scenarios() -> dict[str, GameConfig]:
    """Return the full-participation scenarios of the study."""
    return {"paper": make_preset("paper"), "diverse": make_preset("diverse")}


def partial_scenarios() -> dict[str, GameConfig]:
    """Return the partial-feedback scenarios: M of N asked in each slot, N in {5, 20}, M in {1, 2, N}."""
    scenarios = {}
    for n in (5, 20):
        base = make_preset("paper") if n == 5 else make_preset("paper_n20")
        for m in (1, 2, n):
            scenarios[f"N={n}, M={m}"] = base.replace(feedback_per_slot=m if m < n else None)
    return scenarios


def data_scenarios(data_root: str | None) -> dict[str, LabelTable]:
    """Load the real data sets found under ``data_root`` (folders pandalm and snow2008)."""
    if data_root is None:
        return {}
    root = Path(data_root)
    tables: dict[str, LabelTable] = {}
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    if (root / "pandalm").is_dir():
        tables["PandaLM (3 humans, 2 LLM judges)"] = load_pandalm(root / "pandalm")
    if (root / "snow2008").is_dir():
        tables["Snow RTE, 5-worker panel"] = load_snow_rte(root / "snow2008", panel_size=5)
        tables["Snow RTE, all 164 workers"] = load_snow_rte(root / "snow2008", panel_size=None)
        tables["Snow valence, all 38 workers"] = load_snow_valence(root / "snow2008")
    if not tables:
        raise FileNotFoundError(f"no data set found under {root}: expected folders pandalm and/or snow2008")
    return tables


def builtin_mechanisms() -> tuple[str, ...]:
    """Return the names of the mechanisms that this package defines (not those users registered)."""
    return tuple(name for name in available() if resolve(name).__module__ == "strategic_env.mechanisms")


def run_reproduce(settings: ReproduceSettings, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Run the regret study and write its results folder."""
    mechanisms = settings.mechanisms or builtin_mechanisms()
    tables = data_scenarios(settings.data_root)
    folder = prepare_output(out, overwrite)
    tasks: list[RegretTask] = []
    for name, config in synthetic_scenarios().items():
        for mechanism in mechanisms:
            tasks.append(RegretTask(name, config, mechanism, settings.horizons, settings.replicates, settings.seed))
    for name, config in partial_scenarios().items():
        if name == "N=5, M=5":
            continue  # The paper scenario above is this one.
        for mechanism in mechanisms:
            tasks.append(
                RegretTask(name, config, mechanism, settings.partial_horizons, settings.replicates, settings.seed)
            )
    for name, table in tables.items():
        config = make_preset("paper").replace(n_labelers=table.n_workers, noise_sigma=None, horizon=table.n_items)
        for mechanism in mechanisms:
            tasks.append(
                RegretTask(name, config, mechanism, (table.n_items,), settings.replicates, settings.seed, table)
            )

    started = time.perf_counter()
    # Longest tasks first keeps every worker busy until the end.
    ordered = sorted(tasks, key=lambda task: -sum(task.horizons) * task.config.n_labelers)
    results = map_with_progress(run_regret_task, ordered, settings.workers, "regret runs", "run")
    elapsed = time.perf_counter() - started
    summary = summarise(results, settings.seed, tables)
    from experiments import reproduce_report

    figures = reproduce_report.write_figures(summary, folder)
    reproduce_report.write_csv(summary, folder)
    record = {
        "provenance": provenance(
            {
                "synthetic": {name: c.to_dict() for name, c in synthetic_scenarios().items()},
                "partial": {name: c.to_dict() for name, c in partial_scenarios().items()},
                "data": {name: t.description for name, t in tables.items()},
            },
            [settings.seed],
            {"settings": dataclasses.asdict(settings), "mechanisms": list(mechanisms)},
        ),
        "seconds": elapsed,
        "summary": summary,
        "figures": figures,
    }
    write_json(folder / "results.json", record)
    write_text(folder / "report.md", reproduce_report.render(record, settings))
    return record


def summarise(results: list[dict[str, Any]], seed: int, tables: dict[str, LabelTable]) -> dict[str, Any]:
    """Turn raw per-replicate results into estimates, slopes and curves per scenario and mechanism.

    Each cell's bootstrap draws from its own generator, seeded by ``seed`` and the cell's
    names, so the intervals do not depend on the order in which the runs finished.
    """
    scenarios: dict[str, Any] = {}
    for result in results:
        label = f"{result['scenario']}|{result['mechanism']}".encode()
        rng = np.random.default_rng([seed, zlib.crc32(label)])
        scenario = scenarios.setdefault(result["scenario"], {})
        horizons = sorted(result["horizons"].values(), key=lambda entry: entry["horizon"])
        t_values = np.array([entry["horizon"] for entry in horizons], dtype=float)
        regrets = np.array([entry["regret"] for entry in horizons])
        longest = horizons[-1]
        cell: dict[str, Any] = {
            "horizons": t_values.astype(int).tolist(),
            "regret": [mean_ci(r) for r in regrets],
            "regret_per_t": [mean_ci(r / t) for r, t in zip(regrets, t_values)],
            "regret_per_sqrt_t": [mean_ci(r / math.sqrt(t)) for r, t in zip(regrets, t_values)],
            "platform_loss_per_slot": mean_ci(longest["platform_loss_per_slot"]),
            "final_weights": longest["final_weights"],
            "best_labeler": result["best_labeler"],
            "seconds": result["seconds"],
        }
        if len(t_values) >= 3:
            cell["slope"] = fit_slope(t_values, regrets, rng)
        if result.get("sampled"):
            asked = np.array([entry["asked_regret"] for entry in horizons])
            cell["asked_regret_per_sqrt_t"] = [mean_ci(r / math.sqrt(t)) for r, t in zip(asked, t_values)]
            cell["asked_regret"] = [mean_ci(r) for r in asked]
            if len(t_values) >= 3:
                cell["asked_slope"] = fit_slope(t_values, asked, rng)
        if "regret_curve" in longest:
            curve = np.array(longest["regret_curve"])
            cell["curve_slots"] = longest["curve_slots"]
            cell["regret_curve"] = [mean_ci(row) for row in curve]
        if "best_weight_curve" in longest:
            cell["best_weight_curve"] = [mean_ci(row) for row in np.array(longest["best_weight_curve"])]
            cell["first_exceed"] = {}
            for threshold, firsts in longest["first_exceed"].items():
                firsts = np.array(firsts)
                reached = firsts[firsts > 0]
                cell["first_exceed"][threshold] = {
                    "reached": int(reached.size),
                    "replicates": int(firsts.size),
                    "slot": mean_ci(reached) if reached.size else None,
                }
        scenario[result["mechanism"]] = cell
    order = [*synthetic_scenarios(), *partial_scenarios(), *tables]
    ranked = sorted(scenarios, key=lambda name: order.index(name) if name in order else len(order))
    scenarios = {name: scenarios[name] for name in ranked}
    return {"scenarios": scenarios, "data_labelers": {name: list(table.workers) for name, table in tables.items()}}
