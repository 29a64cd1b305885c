"""Incentive-compatibility stress test: can a labeler gain by misreporting under each mechanism?

For each mechanism, each chosen labeler and each seed, the study

1. trains a PPO deviator for the labeler against truthful others (one-learner environment
   on the batched core);
2. measures its deviation gain: its discounted utility with the deviator minus with truthful
   play, both with deterministic policies on the same random draws (common random numbers);
3. measures the same gain for the closed-form myopic best response where one exists (linear
   rules on the cube, or an empirical model of a data set);
4. records the deviator's misreport, exaggeration, the platform's regret and final weights.

Each seed's figure is the mean over ``eval_episodes`` evaluation episodes drawn from a seed
disjoint from the training seeds. Every estimate in the report is the mean over seeds with a
95 % Student-t interval. The RL deviator is trusted only where it recovers a known positive
gain: under ``mean``, for the labeler with the largest closed-form gain, its gain interval
must exclude 0 and its mean must reach ``required_recovery`` of the closed-form gain.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from agents.best_response import myopic_best_response_for
from agents.evaluation import DeviationResult, evaluate_deviation, play_episodes
from agents.policies import LearnedPolicy
from agents.training import DEFAULT_TOTAL_TIMESTEPS, train_deviator
from experiments import plots
from experiments.parallel import map_with_progress
from experiments.provenance import prepare_output, provenance, write_json, write_text
from experiments.scenario import Scenario
from strategic_env.metrics import Estimate, mean_ci

logger = logging.getLogger(__name__)

# Evaluation draws come from seeds offset by this much, so they never coincide with training.
EVAL_SEED_OFFSET = 1_000_000
SUMMARY_FIELDS = (
    "gain",
    "utility_truthful",
    "utility_deviation",
    "misreport",
    "exaggeration",
    "regret_truthful",
    "regret_deviation",
    "final_weight_truthful",
    "final_weight_deviation",
)


@dataclasses.dataclass(frozen=True)
class StressTestSettings:
    """What the stress test runs.

    Attributes:
        mechanisms: mechanism names or import paths.
        labelers: indices of the labelers who deviate; None for the first and the last.
        seeds: training seeds, one PPO deviator per seed (at least 2 for an interval).
        total_timesteps: PPO training steps per deviator.
        eval_episodes: evaluation episodes per seed.
        workers: training processes run in parallel.
        required_recovery: the fraction of the closed-form gain under ``mean`` that the RL
            deviator must recover to be trusted.
    """

    mechanisms: tuple[str, ...] = ("mean", "median", "online_weighted")
    labelers: tuple[int, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    total_timesteps: int = DEFAULT_TOTAL_TIMESTEPS
    eval_episodes: int = 32
    workers: int = 2
    required_recovery: float = 0.9

    def __post_init__(self) -> None:
        if not self.mechanisms:
            raise ValueError("the stress test needs at least one mechanism")
        if len(self.seeds) < 2:
            raise ValueError(f"invalid seeds={self.seeds!r}: a confidence interval needs at least 2 seeds")
        for name, value, low in (
            ("total_timesteps", self.total_timesteps, 1),
            ("eval_episodes", self.eval_episodes, 1),
            ("workers", self.workers, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"invalid {name}={value!r}: expected an integer >= {low}")
        if not 0.0 < self.required_recovery <= 1.0:
            raise ValueError(f"invalid required_recovery={self.required_recovery!r}: expected a number in (0, 1]")


@dataclasses.dataclass(frozen=True)
class Job:
    """One deviator: train it, save it and evaluate it."""

    scenario: Scenario
    mechanism: str
    labeler: int
    seed: int
    total_timesteps: int
    eval_episodes: int
    model_path: str


def closed_form_available(scenario: Scenario, mechanism: str) -> bool:
    """Whether the closed-form myopic best response applies to ``mechanism`` in ``scenario``."""
    game = scenario.make_game(mechanism)
    if not game.mechanism.linear or game.config.space != "cube":
        return False
    return scenario.table is not None or game.config.fixed_types


def summarise(result: DeviationResult) -> dict[str, float]:
    """Average a deviation result over its evaluation episodes."""
    return {name: float(np.mean(getattr(result, name))) for name in SUMMARY_FIELDS}


def run_job(job: Job) -> dict[str, Any]:
    """Train, save and evaluate one deviator; return its figures (picklable, for worker processes)."""
    import torch

    torch.set_num_threads(1)
    scenario = job.scenario
    config = scenario.config_for(job.mechanism)
    started = time.perf_counter()
    model = train_deviator(config, job.labeler, job.total_timesteps, job.seed, source=scenario.make_source())
    train_seconds = time.perf_counter() - started
    model.save(job.model_path)

    def make_game():
        return scenario.make_game(job.mechanism, batch_size=job.eval_episodes)

    eval_seed = EVAL_SEED_OFFSET + job.seed
    learned = evaluate_deviation(make_game, job.labeler, LearnedPolicy(model), eval_seed)
    closed_form = None
    if closed_form_available(scenario, job.mechanism):
        best_response = myopic_best_response_for(make_game())
        closed_form = summarise(evaluate_deviation(make_game, job.labeler, best_response, eval_seed))
    return {
        "mechanism": job.mechanism,
        "labeler": job.labeler,
        "seed": job.seed,
        "eval_seed": eval_seed,
        "train_seconds": train_seconds,
        "model": job.model_path,
        "learned": summarise(learned),
        "closed_form": closed_form,
    }


def summarise_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn the per-seed figures of one mechanism and labeler into estimates over seeds."""
    cell: dict[str, Any] = {
        "learned": {name: mean_ci([run["learned"][name] for run in runs]) for name in SUMMARY_FIELDS},
        "closed_form": None,
        "recovery": None,
    }
    if all(run["closed_form"] is not None for run in runs):
        cell["closed_form"] = {name: mean_ci([run["closed_form"][name] for run in runs]) for name in SUMMARY_FIELDS}
        closed_gain = cell["closed_form"]["gain"]
        # A recovery ratio is meaningful only against a gain known to be positive.
        if closed_gain.low > 0:
            cell["recovery"] = cell["learned"]["gain"].mean / closed_gain.mean
    return cell


def verdict(mechanism: str, cells: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """State the largest deviation gain found under a mechanism, with its interval."""
    candidates: list[tuple[str, str, Estimate]] = []
    for name, cell in cells.items():
        candidates.append((name, "learned (PPO)", cell["learned"]["gain"]))
        if cell["closed_form"] is not None:
            candidates.append((name, "closed-form myopic", cell["closed_form"]["gain"]))
    labeler, method, epsilon = max(candidates, key=lambda c: c[2].mean)
    significant = epsilon.low > 0
    if significant:
        text = (
            f"{mechanism}: not incentive compatible; {labeler} gains epsilon = {epsilon.format()} "
            f"by the {method} deviation (95 % interval over {epsilon.n} seeds excludes 0)"
        )
    elif epsilon.high < 0:
        text = (
            f"{mechanism}: every deviation tried lost utility; the largest gain is {epsilon.format()} "
            f"({labeler}, {method}), so epsilon = 0 for the deviations tried (95 % interval over {epsilon.n} seeds)"
        )
    else:
        text = (
            f"{mechanism}: no significantly positive deviation found; the largest gain is "
            f"{epsilon.format()} ({labeler}, {method}), so epsilon <= {epsilon.high:.4g} for the deviations tried "
            f"(95 % interval over {epsilon.n} seeds)"
        )
    return {
        "mechanism": mechanism,
        "labeler": labeler,
        "method": method,
        "epsilon": epsilon,
        "significantly_positive": significant,
        "text": text,
    }


def validate_deviator(cells: dict[str, dict[str, Any]], required: float) -> dict[str, Any]:
    """Check that the RL deviator recovers the known gain under ``mean`` (its positive control)."""
    with_closed = {name: cell for name, cell in cells.items() if cell["closed_form"] is not None}
    if not with_closed:
        return {"checked": False, "text": "no closed-form gain under mean to check the RL deviator against"}
    labeler = max(with_closed, key=lambda name: with_closed[name]["closed_form"]["gain"].mean)
    cell = with_closed[labeler]
    learned, closed = cell["learned"]["gain"], cell["closed_form"]["gain"]
    recovery = cell["recovery"]
    passed = learned.low > 0 and recovery is not None and recovery >= required
    text = (
        f"positive control under mean, {labeler}: learned gain {learned.format()} vs closed-form "
        f"{closed.format()}, recovery {'n/a' if recovery is None else f'{recovery:.1%}'} "
        f"(required: interval excludes 0 and recovery >= {required:.0%}): {'PASSED' if passed else 'FAILED'}"
    )
    if not passed:
        text += "; a deviator that misses a known gain cannot support 'no profitable deviation' elsewhere"
    return {"checked": True, "labeler": labeler, "recovery": recovery, "passed": passed, "text": text}


def trajectories(
    scenario: Scenario, mechanism: str, labeler: int, model_path: str, episodes: int, seed: int
) -> dict[str, np.ndarray]:
    """Play truthful and deviating episodes with history for the figures."""
    from stable_baselines3 import PPO

    model = PPO.load(model_path, device="cpu")
    truthful = play_episodes(scenario.make_game(mechanism, episodes, record_history=True), {}, seed)
    deviating = play_episodes(
        scenario.make_game(mechanism, episodes, record_history=True), {labeler: LearnedPolicy(model)}, seed
    )
    out = {
        "regret_truthful": truthful.history.cumulative_regret().mean(axis=1),
        "regret_deviation": deviating.history.cumulative_regret().mean(axis=1),
        "weights_truthful": truthful.history.stacked("weights").mean(axis=1),
        "weights_deviation": deviating.history.stacked("weights").mean(axis=1),
        "preference": deviating.history.stacked("preferences")[:, :, labeler, 0].ravel(),
        "report": deviating.history.stacked("reports")[:, :, labeler, 0].ravel(),
        "asked": deviating.history.stacked("asked")[:, :, labeler].ravel(),
    }
    if closed_form_available(scenario, mechanism):
        game = scenario.make_game(mechanism, episodes, record_history=True)
        play_episodes(game, {labeler: myopic_best_response_for(game)}, seed)
        out["closed_form_report"] = game.history.stacked("reports")[:, :, labeler, 0].ravel()
    return out


def run_stress_test(
    scenario: Scenario, settings: StressTestSettings, out: str | Path, overwrite: bool = False
) -> dict[str, Any]:
    """Run the stress test and write results.json, report.md, figures and models to ``out``."""
    names = scenario.labeler_names
    labelers = settings.labelers if settings.labelers is not None else tuple(sorted({0, len(names) - 1}))
    for labeler in labelers:
        if not 0 <= labeler < len(names):
            raise ValueError(f"invalid labeler index {labeler}: expected 0..{len(names) - 1}")
    for mechanism in settings.mechanisms:
        scenario.make_game(mechanism)  # Fails early on an unknown mechanism or bad parameters.
    folder = prepare_output(out, overwrite)
    models = folder / "models"
    jobs = []
    for mechanism in settings.mechanisms:
        for labeler in labelers:
            for seed in settings.seeds:
                path = models / _safe(mechanism) / f"labeler_{labeler}" / f"seed_{seed}.zip"
                path.parent.mkdir(parents=True, exist_ok=True)
                jobs.append(
                    Job(scenario, mechanism, labeler, seed, settings.total_timesteps, settings.eval_episodes, str(path))
                )
    logger.info("stress test: %d deviators (%d mechanisms x %d labelers x %d seeds)", len(jobs),
                len(settings.mechanisms), len(labelers), len(settings.seeds))
    started = time.perf_counter()
    runs = map_with_progress(run_job, jobs, min(settings.workers, len(jobs)), "training deviators", "deviator")

    summary: dict[str, dict[str, Any]] = {}
    for mechanism in settings.mechanisms:
        summary[mechanism] = {}
        for labeler in labelers:
            cell_runs = [r for r in runs if r["mechanism"] == mechanism and r["labeler"] == labeler]
            summary[mechanism][names[labeler]] = summarise_cell(cell_runs)
    verdicts = {mechanism: verdict(mechanism, summary[mechanism]) for mechanism in settings.mechanisms}
    validation = (
        validate_deviator(summary["mean"], settings.required_recovery)
        if "mean" in summary
        else {"checked": False, "text": "mean was not run, so the RL deviator was not checked against a known gain"}
    )

    focus = _focus_labeler(summary, labelers, names)
    figure_data = {
        mechanism: trajectories(
            scenario,
            mechanism,
            focus,
            next(r["model"] for r in runs if r["mechanism"] == mechanism and r["labeler"] == focus),
            episodes=min(settings.eval_episodes, 8),
            seed=EVAL_SEED_OFFSET + settings.seeds[0],
        )
        for mechanism in settings.mechanisms
    }
    figures = plots.stress_test_figures(figure_data, names, names[focus], folder)
    elapsed = time.perf_counter() - started

    results = {
        "provenance": provenance(
            scenario.describe(),
            list(settings.seeds),
            {"settings": dataclasses.asdict(settings), "labelers": [names[i] for i in labelers]},
        ),
        "seconds": elapsed,
        "summary": summary,
        "verdicts": verdicts,
        "deviator_check": validation,
        "figures": figures,
        "runs": runs,
    }
    write_json(folder / "results.json", results)
    write_text(folder / "report.md", render_report(results, scenario, settings))
    return results


def _focus_labeler(summary: dict[str, Any], labelers: tuple[int, ...], names: tuple[str, ...]) -> int:
    """Pick the labeler shown in figures: the largest closed-form (else learned) gain under the first mechanism."""
    first = next(iter(summary.values()))

    def key(index: int) -> float:
        cell = first[names[index]]
        source = cell["closed_form"] if cell["closed_form"] is not None else cell["learned"]
        return source["gain"].mean

    return max(labelers, key=key)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def format_table(summary: dict[str, Any]) -> list[str]:
    """Return the summary as Markdown table lines."""
    lines = [
        "| mechanism | labeler | truthful utility | learned gain [95 % CI] | closed-form gain [95 % CI] | recovery "
        "| misreport | exaggeration | regret truthful | regret with deviator |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mechanism, cells in summary.items():
        for name, cell in cells.items():
            learned = cell["learned"]
            closed = cell["closed_form"]
            recovery = "n/a" if cell["recovery"] is None else f"{cell['recovery']:.1%}"
            lines.append(
                f"| {mechanism} | {name} | {learned['utility_truthful'].mean:.3f} | {learned['gain'].format()} | "
                f"{closed['gain'].format() if closed else 'n/a'} | {recovery} | "
                f"{learned['misreport'].mean:.3f} | {learned['exaggeration'].mean:+.3f} | "
                f"{learned['regret_truthful'].mean:.2f} | {learned['regret_deviation'].mean:.2f} |"
            )
    return lines


def render_report(results: dict[str, Any], scenario: Scenario, settings: StressTestSettings) -> str:
    """Render report.md."""
    record = results["provenance"]
    git = record["git"]
    config = scenario.config
    lines = [
        "# Incentive-compatibility stress test",
        "",
        f"Command: `{record['command']}`",
        "",
        f"Scenario: {scenario.dataset or 'synthetic'} ({'preset ' + scenario.preset if scenario.preset else 'custom configuration'}), "
        f"N = {scenario.n_labelers}, K = {config.feedback_dim}, horizon {scenario.make_game().horizon} slots, "
        f"utility {config.utility}, discount {config.discount}, action mode {config.action_mode}.",
        f"Seeds: {', '.join(map(str, settings.seeds))} (one PPO deviator of {settings.total_timesteps:,} steps each); "
        f"{settings.eval_episodes} evaluation episodes per seed from seed + {EVAL_SEED_OFFSET:,}.",
        "",
        "Gains are differences in the deviating labeler's discounted utility (sum over the episode of "
        "discount^t times the per-slot utility) against truthful play on the same random draws, both policies "
        "deterministic; the truthful utility column gives their scale. Intervals are 95 % Student-t intervals over seeds. "
        "Recovery is the learned gain as a fraction of the closed-form gain. Misreport is the mean ||r - p||; "
        "exaggeration the mean signed shift along (p - a), positive when pushing away from the aggregate. Regret is "
        "the platform's regret against the best labeler in hindsight, with and without the deviator.",
        "",
        *format_table(results["summary"]),
        "",
        "## Verdicts",
        "",
        *[f"- {v['text']}" for v in results["verdicts"].values()],
        "",
        "## Check of the RL deviator",
        "",
        results["deviator_check"]["text"],
        "",
        "The closed-form myopic best response is exact under `mean` (its weights never move). Under learning rules it "
        "ignores how today's report changes tomorrow's weights, so it bounds the best gain from below.",
        "",
        "## Figures",
        "",
        *[f"![{name}]({path})" for name, path in results["figures"].items()],
        "",
        "## Provenance",
        "",
        f"- git commit: {git['commit']}{' (uncommitted changes)' if git['dirty'] else ''}",
        f"- packages: {', '.join(f'{k} {v}' for k, v in record['packages'].items())}",
        f"- run time: {results['seconds']:.0f} s on {record['machine']['cpus']} CPUs",
        "",
    ]
    return "\n".join(lines)
