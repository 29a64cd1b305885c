"""End-to-end tests of the command line, the studies and the PPO deviator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.best_response import myopic_best_response_for
from agents.evaluation import evaluate_deviation
from agents.policies import LearnedPolicy
from agents.training import DEFAULT_TOTAL_TIMESTEPS, train_deviator
from experiments.cli import main
from strategic_env.pettingzoo_env import build_config, build_game

HUMANS = ("annotator1", "annotator2", "annotator3")
JUDGES = ("gpt-3.5-turbo", "pandalm-7b")


def read_results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_stress_test_quick_writes_report(tmp_path):
    out = tmp_path / "quick"
    assert main(["stress-test", "--quick", "--out", str(out)]) == 0
    results = read_results(out)
    assert set(results["summary"]) == {"mean", "median", "online_weighted"}
    assert set(results["summary"]["mean"]) == {"labeler_0", "labeler_4"}
    assert results["provenance"]["seeds"] == [0, 1]
    assert results["provenance"]["configuration"]["game"]["horizon"] == 200
    assert "numpy" in results["provenance"]["packages"]
    assert "commit" in results["provenance"]["git"]
    assert len(results["runs"]) == 3 * 2 * 2
    gain = results["summary"]["mean"]["labeler_4"]["closed_form"]["gain"]
    assert gain["low"] <= gain["mean"] <= gain["high"]
    assert results["summary"]["median"]["labeler_4"]["closed_form"] is None
    for name in results["figures"].values():
        assert (out / name).stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert "## Verdicts" in report
    assert "epsilon" in report
    assert all((out / run["model"]).is_file() or Path(run["model"]).is_file() for run in results["runs"])


def test_stress_test_keeps_existing_results(tmp_path, capsys):
    out = tmp_path / "kept"
    out.mkdir()
    (out / "results.json").write_text('{"earlier": true}')
    code = main(["stress-test", "--quick", "--out", str(out)])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "results.json").read_text() == '{"earlier": true}'


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--mechanisms", "mean,nonsense"], "nonsense"),
        (["--seeds", "zero"], "zero"),
        (["--seeds", "1,1"], "distinct"),
        (["--dataset", "pandalm"], "--data"),
        (["--data", "somewhere"], "--dataset"),
        (["--policy", "exaggerate:abc"], "exaggerate:abc"),
        (["--horizon", "0"], "horizon"),
        (["--preset", "unknown"], "unknown"),
        (["--panel-size", "3"], "panel-size"),
    ],
)
def test_simulate_rejects_invalid_input(arguments, expected, capsys):
    assert main(["simulate", *arguments]) == 2
    assert expected in capsys.readouterr().err


def test_simulate_writes_weights_by_name(tmp_path, capsys):
    out = tmp_path / "simulate"
    code = main(["simulate", "--horizon", "300", "--seeds", "3", "--out", str(out)])
    assert code == 0
    results = read_results(out)
    weights = results["mechanisms"]["online_weighted"]["final_weights"]
    assert list(weights) == [f"labeler_{i}" for i in range(5)]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["labeler_0"] > weights["labeler_4"]
    assert results["mechanisms"]["mean"]["final_weights"]["labeler_0"] == pytest.approx(0.2)
    assert "regret" in capsys.readouterr().out


def test_simulate_config_file(tmp_path):
    config = tmp_path / "game.toml"
    config.write_text('preset = "diverse"\nhorizon = 50\nmechanism = "online_weighted"\nmechanism_params = { eta = 0.5 }\n')
    out = tmp_path / "simulate"
    assert main(["simulate", "--config", str(config), "--seeds", "2", "--out", str(out)]) == 0
    game = read_results(out)["provenance"]["configuration"]["game"]
    assert game["horizon"] == 50
    assert game["bias"][1] == [0.1]
    assert game["mechanism_params"] == {"eta": 0.5}


def test_simulate_pandalm_trusts_humans(pandalm_dir, tmp_path):
    out = tmp_path / "pandalm"
    code = main(["simulate", "--dataset", "pandalm", "--data", str(pandalm_dir), "--mechanisms", "online_weighted",
                 "--out", str(out)])
    assert code == 0
    weights = read_results(out)["mechanisms"]["online_weighted"]["final_weights"]
    assert set(weights) == set(HUMANS + JUDGES)
    assert min(weights[name] for name in HUMANS) > max(weights[name] for name in JUDGES)
    assert sum(weights[name] for name in HUMANS) > 0.9


def test_simulate_rte_panel_finds_best_worker(snow_dir, tmp_path):
    out = tmp_path / "rte"
    code = main(["simulate", "--dataset", "snow-rte", "--data", str(snow_dir), "--mechanisms", "online_weighted,mean",
                 "--out", str(out)])
    assert code == 0
    results = read_results(out)["mechanisms"]
    weights = results["online_weighted"]["final_weights"]
    assert max(weights, key=weights.get) == "AEX5NCH03LWSG"
    assert results["online_weighted"]["horizon"] == 280
    assert results["online_weighted"]["regret"]["mean"] < results["mean"]["regret"]["mean"]


def test_simulate_table_folder(tmp_path):
    folder = tmp_path / "table"
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = ["task,worker,label"]
    gold = ["task,true_label"]
    for task in range(40):
        truth = int(rng.integers(2))
        gold.append(f"t{task},{truth}")
        for worker, accuracy in (("good", 0.95), ("fair", 0.7), ("poor", 0.5)):
            label = truth if rng.random() < accuracy else 1 - truth
            labels.append(f"t{task},{worker},{label}")
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    (folder / "gold.csv").write_text("\n".join(gold) + "\n")
    out = tmp_path / "out"
    assert main(["simulate", "--dataset", "table", "--data", str(folder), "--seeds", "2", "--out", str(out)]) == 0
    weights = read_results(out)["mechanisms"]["online_weighted"]["final_weights"]
    assert set(weights) == {"good", "fair", "poor"}


def test_train_saves_and_evaluates(tmp_path, capsys):
    out = tmp_path / "train"
    common = ["--labeler", "4", "--mechanism", "mean", "--horizon", "100", "--eval-episodes", "4"]
    assert main(["train", *common, "--steps", "2048", "--out", str(out)]) == 0
    assert (out / "model.zip").is_file()
    results = read_results(out)
    assert "closed_form_gain" in results["figures"]
    assert main(["train", *common, "--evaluate", str(out / "model.zip")]) == 0
    assert "learned_gain" in capsys.readouterr().out


def test_train_rejects_mismatched_model(tmp_path, capsys):
    out = tmp_path / "train"
    assert main(["train", "--labeler", "0", "--horizon", "50", "--steps", "512", "--eval-episodes", "2",
                 "--out", str(out)]) == 0
    config = tmp_path / "typed.toml"
    config.write_text('observation_features = ["preference", "weight", "type"]\n')
    code = main(["train", "--labeler", "0", "--config", str(config), "--evaluate", str(out / "model.zip")])
    assert code == 2
    assert "shape" in capsys.readouterr().err


def test_train_rejects_unknown_labeler(capsys):
    assert main(["train", "--labeler", "labeler_9"]) == 2
    assert "labeler_9" in capsys.readouterr().err


def test_ppo_deviator_recovers_mean_gain():
    # The demo requires the 5-seed mean to reach 90 % of the closed-form gain. Single seeds
    # reached 92 to 96 % there, so one seed is held to 80 %.
    config = build_config(preset="paper", mechanism="mean")
    model = train_deviator(config, 4, DEFAULT_TOTAL_TIMESTEPS, seed=0)

    def make_game():
        return build_game(config=config, batch_size=16)

    learned = evaluate_deviation(make_game, 4, LearnedPolicy(model), seed=1_000_000)
    closed = evaluate_deviation(make_game, 4, myopic_best_response_for(make_game()), seed=1_000_000)
    assert learned.gain.mean() > 0
    assert learned.gain.mean() >= 0.8 * closed.gain.mean()


def test_bench_prints_ratio(capsys):
    assert main(["bench", "--seconds", "0.05", "--n-envs", "8"]) == 0
    assert "ratio" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["stress-test", "--labelers", "4,4"], "distinct"),
        (["stress-test", "--labelers", ","], "distinct"),
        (["stress-test", "--mechanisms", "mean,mean"], "only once"),
        (["stress-test", "--eval-episodes", "0"], "eval_episodes"),
        (["train", "--labeler", "0", "--steps", "0"], "--steps"),
        (["reproduce", "--horizons", ""], "--horizons"),
        (["reproduce", "--horizons", "100,100"], "distinct"),
        (["reproduce", "--workers", "0"], "--workers"),
        (["simulate", "--seeds", ","], "--seeds"),
        (["simulate", "--mechanisms", "..x:Y"], "absolute path"),
        (["simulate", "--mechanisms", "strategic_env.mechanisms:Mechanism"], "abstract"),
    ],
)
def test_cli_rejects_bad_values(arguments, expected, capsys, tmp_path):
    assert main([*arguments, "--out", str(tmp_path / "out")]) == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(("arguments", "expected"), [(["--seconds", "nan"], "--seconds"), (["--mechanisms", ""], "--mechanisms")])
def test_bench_rejects_bad_values(arguments, expected, capsys):
    assert main(["bench", *arguments]) == 2
    assert expected in capsys.readouterr().err


def test_cli_reports_path_errors(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["simulate", "--horizon", "20", "--seeds", "2", "--out", str(blocker / "sub")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["simulate", "--config", str(tmp_path)]) == 2


def test_evaluate_rejects_other_layout(tmp_path, capsys):
    out = tmp_path / "train"
    assert main(["train", "--labeler", "0", "--horizon", "30", "--steps", "512", "--eval-episodes", "2",
                 "--out", str(out)]) == 0
    config = tmp_path / "other_layout.toml"
    # Seven values like the default layout, but other features in other places.
    features = ["preference", "weight", "time_left", "previous_aggregate", "previous_truth", "type"]
    config.write_text(f"observation_features = {json.dumps(features)}\n")
    code = main(["train", "--labeler", "0", "--config", str(config), "--evaluate", str(out / "model.zip")])
    assert code == 2
    assert "observation" in capsys.readouterr().err
