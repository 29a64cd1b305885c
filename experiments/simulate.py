"""Simulation of mechanisms against fixed labeler policies over several seeds.

Reports the platform's loss per slot, its regret against the best labeler in hindsight and
the final weight of every labeler, each as a mean over seeds with a 95 % interval.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from agents.best_response import myopic_best_response_for
from agents.evaluation import play_episodes
from agents.policies import Exaggerate
from experiments.provenance import prepare_output, provenance, write_json
from experiments.scenario import Scenario
from strategic_env.metrics import mean_ci
from strategic_env.one_learner import LabelerPolicy

logger = logging.getLogger(__name__)

POLICY_HELP = "truthful, exaggerate:FACTOR (push away from the centre of Y), or myopic (closed-form best response)"


def parse_policy(text: str) -> str:
    """Check a policy description such as ``truthful``, ``exaggerate:2`` or ``myopic``."""
    name, _, argument = text.partition(":")
    if name in ("truthful", "myopic") and not argument:
        return text
    if name == "exaggerate":
        try:
            factor = float(argument)
        except ValueError:
            factor = float("nan")
        if np.isfinite(factor) and factor >= 0:
            return text
    raise ValueError(f"invalid --policy {text!r}: expected {POLICY_HELP}")


def build_policy(text: str, game: Any) -> LabelerPolicy | None:
    """Build the fixed policy that every labeler follows; None means truthful."""
    name, _, argument = parse_policy(text).partition(":")
    if name == "truthful":
        return None
    if name == "exaggerate":
        return Exaggerate(float(argument))
    return myopic_best_response_for(game)


def run_simulation(
    scenario: Scenario,
    mechanisms: tuple[str, ...],
    seeds: tuple[int, ...],
    policy: str = "truthful",
    out: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Simulate each mechanism over the seeds; write results.json to ``out`` if given."""
    parse_policy(policy)
    for mechanism in mechanisms:
        scenario.make_game(mechanism)  # Fails early on an unknown mechanism or bad parameters.
    folder = prepare_output(out, overwrite) if out is not None else None
    names = scenario.labeler_names
    results: dict[str, Any] = {}
    for mechanism in mechanisms:
        losses, regrets, weights = [], [], []
        horizon = 0
        for seed in seeds:
            game = scenario.make_game(mechanism)
            fixed = build_policy(policy, game)
            policies = {} if fixed is None else {i: fixed for i in range(game.n_labelers)}
            play_episodes(game, policies, seed)
            horizon = game.horizon
            losses.append(game.cumulative_platform_loss[0] / game.horizon)
            regrets.append(game.regret()[0])
            weights.append(game.weights[0].copy())
        weights_array = np.array(weights)
        regret = mean_ci(regrets)
        results[mechanism] = {
            "horizon": horizon,
            "platform_loss_per_slot": mean_ci(losses),
            "regret": regret,
            "regret_per_slot": mean_ci(np.array(regrets) / horizon),
            "final_weights": {name: float(weights_array[:, i].mean()) for i, name in enumerate(names)},
            "final_weights_ci": {name: mean_ci(weights_array[:, i]) for i, name in enumerate(names)},
        }
        logger.info("%s: regret %s over %d slots", mechanism, regret.format(), horizon)
    record = {
        "provenance": provenance(scenario.describe(), list(seeds), {"policy": policy, "mechanisms": list(mechanisms)}),
        "mechanisms": results,
    }
    if folder is not None:
        write_json(folder / "results.json", record)
    return record


def format_simulation(record: dict[str, Any]) -> str:
    """Return the simulation's results as plain-text tables."""
    results = record["mechanisms"]
    names = list(next(iter(results.values()))["final_weights"])
    lines = [f"{'mechanism':<18} {'loss per slot [95% CI]':<34} {'regret R_T [95% CI]':<34} R_T/T"]
    for mechanism, row in results.items():
        lines.append(
            f"{mechanism:<18} {row['platform_loss_per_slot'].format():<34} {row['regret'].format():<34} "
            f"{row['regret_per_slot'].mean:.4g}"
        )
    lines.append("")
    width = max(len(name) for name in names)
    lines.append("final weights (mean over seeds):")
    lines.append(f"{'labeler':<{width}}  " + "  ".join(f"{m[:15]:>15}" for m in results))
    for name in names:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{results[m]['final_weights'][name]:>15.4f}" for m in results))
    return "\n".join(lines)
