"""The ``strategic-env`` command line: simulate, train and stress-test.

Run ``strategic-env SUBCOMMAND --help`` for the options of each subcommand.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any


import numpy as np

from strategic_env.config import ConfigError
from strategic_env.datasets import DATASETS

logger = logging.getLogger("strategic_env")

DEFAULT_MECHANISMS = ("mean", "median", "online_weighted")
STUDY_MECHANISMS_HELP = (
    "comma-separated mechanism names or import paths (default: the --config file's mechanism, "
    "else mean,median,online_weighted)"
)
QUICK_SEEDS = (0, 1)
QUICK_TIMESTEPS = 20_000
QUICK_HORIZON = 200
QUICK_EVAL_EPISODES = 8


def _add_scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="named configuration to start from: paper (default), diverse or paper_n20")
    parser.add_argument("--config", dest="config_file", metavar="FILE", help="TOML configuration file (field = value)")
    parser.add_argument("--dataset", choices=DATASETS, help="replay a real data set instead of synthetic preferences")
    parser.add_argument("--data", metavar="PATH", help="folder that contains the data set's files")
    parser.add_argument(
        "--panel-size",
        type=int,
        metavar="K",
        help="Snow data sets: the K most active workers on the items all of them labelled; 0 for the whole "
        "table (defaults: 5 for snow-rte, the whole table for snow-valence)",
    )
    parser.add_argument("--horizon", type=int, metavar="T", help="number of slots T per episode (overrides the configuration)")
    parser.add_argument("--out", metavar="FOLDER", help="folder for results.json and the other outputs")
    parser.add_argument("--overwrite", action="store_true", help="allow --out to name a folder that already contains results.json")


def _scenario(args: argparse.Namespace, horizon: int | None = None):
    from experiments.scenario import build_scenario

    options: dict[str, Any] = {}
    if args.panel_size is not None:
        if args.dataset not in ("snow-rte", "snow-valence"):
            raise ValueError(f"--panel-size applies to snow-rte and snow-valence, not to {args.dataset or 'synthetic games'}")
        if args.panel_size < 0:
            raise ValueError(f"invalid --panel-size {args.panel_size}: expected 0 (whole table) or a positive count")
        options["panel_size"] = args.panel_size or None
    overrides = {}
    chosen_horizon = args.horizon if args.horizon is not None else horizon
    if chosen_horizon is not None:
        overrides["horizon"] = chosen_horizon
    return build_scenario(
        preset=args.preset,
        config_file=args.config_file,
        dataset=args.dataset,
        data=args.data,
        dataset_options=options,
        **overrides,
    )


def _labeler_index(text: str, names: tuple[str, ...]) -> int:
    if text in names:
        return names.index(text)
    try:
        index = int(text.removeprefix("labeler_"))
    except ValueError:
        index = -1
    if not 0 <= index < len(names):
        raise ValueError(f"invalid labeler {text!r}: expected an index 0..{len(names) - 1} or one of {', '.join(names)}")
    return index


def _study_mechanisms(args: argparse.Namespace, scenario: Any) -> tuple[str, ...]:
    """Return --mechanisms, else the configuration file's mechanism, else mean, median and online_weighted."""
    from experiments.scenario import parse_mechanisms

    if args.mechanisms is not None:
        return parse_mechanisms(args.mechanisms)
    if args.config_file is not None:
        return (scenario.config.mechanism,)
    return DEFAULT_MECHANISMS


def cmd_simulate(args: argparse.Namespace) -> int:
    from experiments.scenario import parse_seeds
    from experiments.simulate import format_simulation, run_simulation

    scenario = _scenario(args)
    record = run_simulation(
        scenario,
        _study_mechanisms(args, scenario),
        parse_seeds(args.seeds),
        policy=args.policy,
        out=args.out,
        overwrite=args.overwrite,
    )
    print(format_simulation(record))
    if args.out:
        print(f"\nresults written to {Path(args.out) / 'results.json'}")
    return 0


def cmd_stress_test(args: argparse.Namespace) -> int:
    from experiments.scenario import parse_seeds
    from experiments.stress_test import StressTestSettings, format_table, run_stress_test

    quick = args.quick
    scenario = _scenario(args, horizon=QUICK_HORIZON if quick and args.horizon is None else None)
    names = scenario.labeler_names
    labelers = None
    if args.labelers is not None:
        labelers = tuple(_labeler_index(part.strip(), names) for part in args.labelers.split(",") if part.strip())
        if not labelers or len(set(labelers)) != len(labelers):
            raise ValueError(f"invalid --labelers {args.labelers!r}: expected distinct labeler indices or names")
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
    else:
        seeds = QUICK_SEEDS if quick else (0, 1, 2, 3, 4)
    steps = args.steps
    if steps is None and quick:
        steps = QUICK_TIMESTEPS
    eval_episodes = args.eval_episodes
    if eval_episodes is None:
        eval_episodes = QUICK_EVAL_EPISODES if quick else 32
    settings_kwargs: dict[str, Any] = {
        "mechanisms": _study_mechanisms(args, scenario),
        "labelers": labelers,
        "seeds": seeds,
        "eval_episodes": eval_episodes,
        "workers": args.workers,
    }
    if steps is not None:
        settings_kwargs["total_timesteps"] = steps
    settings = StressTestSettings(**settings_kwargs)
    out = args.out or ("results/stress-test-quick" if quick else "results/stress-test")
    results = run_stress_test(scenario, settings, out, overwrite=args.overwrite)
    print("\n".join(format_table(results["summary"])))
    print()
    for item in results["verdicts"].values():
        print(item["text"])
    print(results["deviator_check"]["text"])
    print(f"\nreport written to {Path(out) / 'report.md'} ({results['seconds']:.0f} s)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from stable_baselines3 import PPO

    from agents.best_response import myopic_best_response_for
    from agents.evaluation import evaluate_deviation
    from agents.policies import LearnedPolicy
    from agents.training import DEFAULT_TOTAL_TIMESTEPS, train_deviator
    from experiments.provenance import prepare_output, provenance, write_json
    from experiments.stress_test import EVAL_SEED_OFFSET, closed_form_available
    from strategic_env.metrics import mean_ci

    torch.set_num_threads(1)  # PPO's small networks train fastest on one thread.
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"invalid --steps {args.steps}: expected a positive number of training steps")
    if args.eval_episodes < 1:
        raise ValueError(f"invalid --eval-episodes {args.eval_episodes}: expected a positive number")
    if args.seed < 0:
        raise ValueError(f"invalid --seed {args.seed}: expected an integer >= 0")
    scenario = _scenario(args)
    if args.mechanism is None:
        args.mechanism = scenario.config.mechanism if args.config_file is not None else "mean"
    labeler = _labeler_index(args.labeler, scenario.labeler_names)
    scenario.make_game(args.mechanism)  # Fails early on an unknown mechanism.
    if args.evaluate:
        model_path = Path(args.evaluate)
        if not model_path.is_file():
            raise FileNotFoundError(f"model file not found: {model_path}")
        model = PPO.load(model_path, device="cpu")
        game = scenario.make_game(args.mechanism)
        expected = game.observation_low.shape
        if model.observation_space.shape != expected:
            raise ValueError(
                f"the model at {model_path} observes vectors of shape {model.observation_space.shape}, but this "
                f"game's observations have shape {expected}; use the configuration it was trained with"
            )
        same_bounds = np.array_equal(model.observation_space.low, game.observation_low) and np.array_equal(
            model.observation_space.high, game.observation_high
        )
        record_path = model_path.parent / "results.json"
        trained_features = None
        if record_path.is_file():
            trained_features = json.loads(record_path.read_text()).get("provenance", {}).get("observation_features")
        features = list(scenario.config.observation_features)
        if not same_bounds or (trained_features is not None and trained_features != features):
            raise ValueError(
                f"the model at {model_path} was trained on observation features {trained_features or 'of other bounds'}, "
                f"but this game observes {features}; use the configuration it was trained with"
            )
        folder = None
    else:
        folder = prepare_output(args.out or "runs/train", args.overwrite)
        steps = args.steps if args.steps is not None else DEFAULT_TOTAL_TIMESTEPS
        config = scenario.config_for(args.mechanism)
        model = train_deviator(config, labeler, steps, args.seed, source=scenario.make_source())
        model.save(folder / "model.zip")

    def make_game():
        return scenario.make_game(args.mechanism, batch_size=args.eval_episodes)

    eval_seed = EVAL_SEED_OFFSET + args.seed
    learned = evaluate_deviation(make_game, labeler, LearnedPolicy(model), eval_seed)
    figures: dict[str, Any] = {"learned_gain": mean_ci(learned.gain), "learned_misreport": mean_ci(learned.misreport)}
    if closed_form_available(scenario, args.mechanism):
        closed = evaluate_deviation(make_game, labeler, myopic_best_response_for(make_game()), eval_seed)
        figures["closed_form_gain"] = mean_ci(closed.gain)
    name = scenario.labeler_names[labeler]
    print(f"{args.mechanism}, {name}: {args.eval_episodes} evaluation episodes from seed {eval_seed}, 95 % CI over episodes")
    for key, estimate in figures.items():
        print(f"  {key:<20} {estimate.format()}")
    if folder is not None:
        write_json(
            folder / "results.json",
            {
                "provenance": provenance(
                    {**scenario.describe(), "game": scenario.config_for(args.mechanism).to_dict()},
                    [args.seed],
                    {
                        "mechanism": args.mechanism,
                        "labeler": name,
                        "steps": args.steps if args.steps is not None else DEFAULT_TOTAL_TIMESTEPS,
                        "observation_features": list(scenario.config.observation_features),
                    },
                ),
                "evaluation_seed": eval_seed,
                "figures": figures,
                "model": "model.zip",
            },
        )
        print(f"model and results written to {folder}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from experiments.benchmark import (
        bench_mechanisms,
        bench_one_learner,
        format_mechanisms,
        format_one_learner,
        normal_draws_per_second,
    )
    from experiments.reproduce import builtin_mechanisms
    from experiments.scenario import parse_mechanisms

    if args.n_envs < 1:
        raise ValueError(f"invalid --n-envs {args.n_envs}: expected a positive number of games")
    if not math.isfinite(args.seconds) or args.seconds <= 0:
        raise ValueError(f"invalid --seconds {args.seconds}: expected a finite positive number of seconds")
    mechanisms = parse_mechanisms(args.mechanisms) if args.mechanisms is not None else builtin_mechanisms()
    normal_rate = normal_draws_per_second((1000, 100, 1), args.seconds)
    rows = bench_mechanisms(mechanisms, min_seconds=args.seconds)
    print(format_mechanisms(rows, normal_rate))
    print()
    for mechanism in ("mean", "online_weighted"):
        print(format_one_learner(bench_one_learner(args.n_envs, mechanism, args.seconds), mechanism))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from experiments.reproduce import FULL_HORIZONS, QUICK_HORIZONS, ReproduceSettings, run_reproduce
    from experiments.reproduce_report import HEADLINE_MECHANISMS, headline_table
    from experiments.scenario import parse_mechanisms

    horizons = QUICK_HORIZONS if args.quick else FULL_HORIZONS
    if args.horizons is not None:
        try:
            horizons = tuple(int(part) for part in args.horizons.split(","))
        except ValueError:
            raise ValueError(f"invalid --horizons {args.horizons!r}: expected comma-separated slot counts") from None
        if min(horizons) < 1 or len(set(horizons)) != len(horizons):
            raise ValueError(f"invalid --horizons {args.horizons!r}: expected distinct positive slot counts")
    if args.seed < 0:
        raise ValueError(f"invalid --seed {args.seed}: expected an integer >= 0")
    if args.workers < 1:
        raise ValueError(f"invalid --workers {args.workers}: expected at least 1")
    replicates = args.replicates
    if replicates is None:
        replicates = 5 if args.quick else 20
    settings = ReproduceSettings(
        mechanisms=parse_mechanisms(args.mechanisms) if args.mechanisms is not None else (),
        horizons=horizons,
        partial_horizons=horizons,
        replicates=replicates,
        seed=args.seed,
        data_root=args.data,
        workers=args.workers,
    )
    out = args.out or ("results/reproduce-quick" if args.quick else "results/reproduce")
    record = run_reproduce(settings, out, overwrite=args.overwrite)
    for scenario in ("paper", "diverse"):
        print(f"{scenario}:")
        print("\n".join(headline_table(record["summary"], scenario, HEADLINE_MECHANISMS)))
        print()
    print(f"report written to {Path(out) / 'report.md'} ({record['seconds']:.0f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strategic-env", description="Benchmark of strategic human feedback in online RLHF."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="run mechanisms against fixed labeler policies")
    _add_scenario_options(simulate)
    simulate.add_argument("--mechanisms", help=STUDY_MECHANISMS_HELP)
    simulate.add_argument("--seeds", default="5", help="a count N (seeds 0..N-1) or a comma-separated list (default: 5)")
    from experiments.simulate import POLICY_HELP

    simulate.add_argument("--policy", default="truthful", help=f"policy of every labeler: {POLICY_HELP}")
    simulate.set_defaults(handler=cmd_simulate)

    stress = commands.add_parser("stress-test", help="train deviators and measure each mechanism's incentive compatibility")
    _add_scenario_options(stress)
    stress.add_argument("--mechanisms", help=STUDY_MECHANISMS_HELP)
    stress.add_argument("--seeds", help="a count N (seeds 0..N-1) or a comma-separated list (default: 5; --quick: 2)")
    stress.add_argument("--labelers", help="comma-separated indices or names of the deviating labelers (default: first and last)")
    stress.add_argument("--steps", type=int, help="PPO training steps per deviator (default: 300000; --quick: 20000)")
    stress.add_argument("--eval-episodes", type=int, help="evaluation episodes per seed (default: 32; --quick: 8)")
    stress.add_argument("--workers", type=int, default=2, help="training processes in parallel (default: 2)")
    stress.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 20000 steps, horizon 200")
    stress.set_defaults(handler=cmd_stress_test)

    train = commands.add_parser("train", help="train a PPO deviator for one labeler, or evaluate a saved one")
    _add_scenario_options(train)
    train.add_argument("--labeler", required=True, help="index or name of the deviating labeler")
    train.add_argument("--mechanism", help="mechanism name or import path (default: the --config file's, else mean)")
    train.add_argument("--steps", type=int, help="PPO training steps (default: 300000)")
    train.add_argument("--seed", type=int, default=0, help="training seed; evaluation uses seed + 1000000 (default: 0)")
    train.add_argument("--eval-episodes", type=int, default=32, help="evaluation episodes (default: 32)")
    train.add_argument("--evaluate", metavar="MODEL", help="evaluate a saved model.zip instead of training")
    train.set_defaults(handler=cmd_train)

    reproduce = commands.add_parser("reproduce", help="regret of every mechanism against the horizon T")
    reproduce.add_argument("--mechanisms", help="comma-separated mechanism names or import paths (default: all built-in)")
    reproduce.add_argument("--horizons", help="comma-separated horizons T (default: 100 to 100000, log-spaced)")
    reproduce.add_argument("--replicates", type=int, help="independent episodes per horizon (default: 20; --quick: 5)")
    reproduce.add_argument("--seed", type=int, default=0, help="seed of all replicates (default: 0)")
    reproduce.add_argument("--data", metavar="FOLDER", help="folder with pandalm/ and snow2008/ for the real-data part")
    reproduce.add_argument("--workers", type=int, default=2, help="processes in parallel (default: 2)")
    reproduce.add_argument("--quick", action="store_true", help="horizons 100 to 1000 and 5 replicates")
    reproduce.add_argument("--out", metavar="FOLDER", help="results folder (default: results/reproduce)")
    reproduce.add_argument("--overwrite", action="store_true", help="allow --out to name a folder that already contains results.json")
    reproduce.set_defaults(handler=cmd_reproduce)

    bench = commands.add_parser("bench", help="measure environment throughput against a same-process baseline")
    bench.add_argument("--n-envs", type=int, default=64, help="games in the vectorised environment (default: 64)")
    bench.add_argument("--seconds", type=float, default=0.5, help="minimum timed seconds per measurement (default: 0.5)")
    bench.add_argument("--mechanisms", help="comma-separated mechanism names (default: all built-in)")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A console script does not put the working folder on sys.path as `python -m` does, so
    # user mechanisms given as 'package.module:Class' would not import from it.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    try:
        return args.handler(args)
    except (ConfigError, ValueError, OSError) as error:
        print(f"strategic-env {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
