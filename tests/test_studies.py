"""Tests of the regret study, the benchmark and the plain Python reference rules."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from experiments.benchmark import bench_mechanisms, format_mechanisms
from experiments.cli import main
from experiments.reproduce import checkpoints, fit_slope
from strategic_env.config import GameConfig, preset
from strategic_env.game import StrategicFeedbackGame
from strategic_env.mechanisms import make
from strategic_env.preferences import SyntheticSource
from strategic_env.reference_rules import plain_rule

PLAIN_RULES = (
    "mean",
    "median",
    "online_weighted",
    "hedge",
    "mw_linear",
    "weighted_majority_abs",
    "follow_the_leader",
    "em_weights",
)


@pytest.mark.parametrize("name", PLAIN_RULES)
def test_plain_rule_matches_batched(name):
    n, k, horizon = 4, 2, 50
    rng = random.Random(7)
    plain = plain_rule(name, n, horizon)
    batched = make(name)
    batched.reset(n, horizon, np.random.default_rng(0), batch_size=1, feedback_dim=k)
    mask = np.ones((1, n), dtype=bool)
    for _ in range(horizon):
        truth = [rng.random() for _ in range(k)]
        reports = [[min(1.0, max(0.0, y + rng.gauss(0.0, 0.1 * (i + 1)))) for y in truth] for i in range(n)]
        expected = plain.aggregate(reports)
        actual = batched.aggregate(np.array([reports]), mask)[0]
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
        plain.update(reports, truth)
        batched.update(np.array([reports]), mask, np.array([truth]))
        np.testing.assert_allclose(batched.weights[0], plain.weights, rtol=0, atol=1e-12)


def test_asked_regret_zero_with_one_asked():
    config = preset("paper", horizon=300, feedback_per_slot=1)
    game = StrategicFeedbackGame(config, batch_size=8, compute_utilities=False)
    game.reset(3)
    while not game.done:
        game.step(game.preferences)
    # With one labeler asked, the aggregate is that labeler's report: no regret on its slots.
    np.testing.assert_allclose(game.asked_regret(), 0.0, atol=1e-12)
    assert np.all(game.regret() > 0)


def test_asked_regret_equals_regret_when_all_asked():
    game = StrategicFeedbackGame(preset("paper", horizon=200), batch_size=4, compute_utilities=False)
    game.reset(1)
    while not game.done:
        game.step(game.preferences)
    np.testing.assert_array_equal(game.asked_regret(), game.regret())


def test_synthetic_blocks_bounded_memory():
    config = GameConfig(n_labelers=100, noise_sigma=tuple([0.1] * 100), horizon=10**6)
    source = SyntheticSource(config)
    source.reset(1000, np.random.default_rng(0))
    source.draw(0)
    truth, preferences, _ = source._block
    assert preferences.size <= max(SyntheticSource.BLOCK_ELEMENTS, 1000 * 100)
    assert preferences.shape[1:] == (1000, 100, 1)


def test_synthetic_draws_in_order_only():
    source = SyntheticSource(preset("paper"))
    source.reset(2, np.random.default_rng(0))
    source.draw(0)
    with pytest.raises(ValueError, match="in order"):
        source.draw(source._block_length + 5)


def test_regret_without_utilities_matches():
    config = preset("diverse", horizon=150, mechanism="online_weighted")
    full = StrategicFeedbackGame(config, batch_size=3)
    lean = StrategicFeedbackGame(config, batch_size=3, compute_utilities=False)
    for game in (full, lean):
        game.reset(11)
        while not game.done:
            game.step(game.preferences)
    np.testing.assert_array_equal(full.regret(), lean.regret())
    np.testing.assert_array_equal(full.weights, lean.weights)
    assert np.all(lean.discounted_utility == 0)


def test_fit_slope_recovers_power_law():
    horizons = np.array([100.0, 1000.0, 10000.0])
    rng = np.random.default_rng(0)
    regrets = horizons[:, None] ** 0.5 * (1 + 0.01 * rng.standard_normal((3, 20)))
    fit = fit_slope(horizons, regrets, rng)
    assert fit["slope"] == pytest.approx(0.5, abs=0.01)
    assert fit["low"] <= 0.5 <= fit["high"]


def test_fit_slope_rejects_negative_regret():
    horizons = np.array([100.0, 1000.0, 10000.0])
    regrets = np.array([[1.0, 2.0], [-3.0, -1.0], [5.0, 6.0]])
    fit = fit_slope(horizons, regrets, np.random.default_rng(0))
    assert fit["slope"] is None
    assert "1000" in fit["reason"]


def test_checkpoints_end_at_horizon():
    marks = checkpoints(12345)
    assert marks[0] == 1
    assert marks[-1] == 12345
    assert np.all(np.diff(marks) > 0)


def test_reproduce_quick_writes_study(tmp_path, data_root):
    out = tmp_path / "reproduce"
    assert main(["reproduce", "--quick", "--data", str(data_root), "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    scenarios = record["summary"]["scenarios"]
    for name in ("paper", "diverse", "N=5, M=1", "N=5, M=2", "N=20, M=1", "N=20, M=2", "N=20, M=20"):
        assert name in scenarios
    assert "Snow RTE, all 164 workers" in scenarios
    paper = scenarios["paper"]
    assert set(paper) >= {"mean", "median", "online_weighted"}
    assert paper["online_weighted"]["regret_per_t"][-1]["mean"] < paper["mean"]["regret_per_t"][-1]["mean"]
    assert "slope" in paper["mean"]
    assert "asked_slope" in scenarios["N=5, M=2"]["online_weighted"]
    assert record["provenance"]["seeds"] == [0]
    with (out / "regret_vs_horizon.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {row["scenario"] for row in rows} >= {"paper", "diverse"}
    for name in record["figures"].values():
        assert (out / name).stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert "log-log slope" in report
    assert "## Real data" in report


def test_reproduce_rejects_bad_horizons(capsys):
    assert main(["reproduce", "--horizons", "100,abc"]) == 2
    assert "abc" in capsys.readouterr().err


def test_bench_rows_have_ratios():
    rows = bench_mechanisms(("mean", "online_weighted"), grid=((5, 1, 10),), min_seconds=0.02)
    assert len(rows) == 2
    for row in rows:
        assert row["labeler_slots_per_s"] > 0
        assert row["ratio"] > 0
    text = format_mechanisms(rows, normal_rate=1e8)
    assert "online_weighted" in text


def test_summary_independent_of_order():
    from experiments.reproduce import RegretTask, run_regret_task, summarise

    tasks = [
        RegretTask("paper", preset("paper"), mechanism, (50, 100, 200), 4, 0) for mechanism in ("mean", "hedge")
    ]
    results = [run_regret_task(task) for task in tasks]
    forward = summarise(results, 0, {})
    backward = summarise(results[::-1], 0, {})
    for mechanism in ("mean", "hedge"):
        assert forward["scenarios"]["paper"][mechanism]["slope"] == backward["scenarios"]["paper"][mechanism]["slope"]


def test_config_rejects_unknown_mechanism():
    from strategic_env.config import ConfigError

    with pytest.raises(ConfigError, match="nosuch"):
        preset("paper", mechanism="nosuch")
    with pytest.raises(ConfigError, match="eta"):
        preset("paper", mechanism="online_weighted", mechanism_params={"eta": 5})
