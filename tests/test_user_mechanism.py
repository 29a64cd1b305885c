"""A mechanism defined outside the package, used by import path everywhere a name is accepted."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import strategic_env
from experiments.cli import main
from strategic_env.config import load_config
from strategic_env.mechanisms import make

USER_MODULE = textwrap.dedent(
    '''
    import numpy as np

    from strategic_env.mechanisms import Mechanism


    class TrimmedMean(Mechanism):
        """Mean of the asked labelers' reports without the lowest and the highest one."""

        def aggregate(self, reports, mask):
            values = np.where(mask[:, :, None], reports, np.nan)
            ordered = np.sort(values, axis=1)
            counts = mask.sum(axis=1)
            out = np.empty((reports.shape[0], reports.shape[2]))
            for b, count in enumerate(counts):
                kept = ordered[b, 1 : count - 1] if count > 2 else ordered[b, :count]
                out[b] = kept.mean(axis=0)
            return out
    '''
)


@pytest.fixture
def user_rules(tmp_path, monkeypatch):
    (tmp_path / "user_rules.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_rules:TrimmedMean"


def test_make_by_import_path(user_rules):
    mechanism = make(user_rules)
    mechanism.reset(5, 10, np.random.default_rng(0), batch_size=1)
    reports = np.array([[[0.0], [0.2], [0.4], [0.6], [1.0]]])
    aggregate = mechanism.aggregate(reports, np.ones((1, 5), dtype=bool))
    assert aggregate[0, 0] == pytest.approx(0.4)


def test_config_file_import_path(user_rules, tmp_path):
    path = tmp_path / "game.toml"
    path.write_text(f'mechanism = "{user_rules}"\nhorizon = 30\n')
    env = strategic_env.parallel_env(config=load_config(path))
    observations, _ = env.reset(seed=0)
    steps = 0
    while env.agents:
        env.step({agent: observations[agent][:1] for agent in env.agents})
        steps += 1
    assert steps == 30
    assert env.config.mechanism == user_rules


def test_simulate_import_path(user_rules, tmp_path):
    out = tmp_path / "simulate"
    assert main(["simulate", "--mechanisms", f"{user_rules},mean", "--horizon", "60", "--seeds", "2",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["mechanisms"]
    assert user_rules in results
    assert results[user_rules]["regret"]["mean"] != results["mean"]["regret"]["mean"]


def test_reproduce_import_path_in_workers(user_rules, tmp_path):
    out = tmp_path / "reproduce"
    code = main(["reproduce", "--mechanisms", f"{user_rules},median", "--horizons", "50,100,200",
                 "--replicates", "2", "--workers", "2", "--out", str(out)])
    assert code == 0
    scenarios = json.loads((out / "results.json").read_text())["summary"]["scenarios"]
    assert user_rules in scenarios["paper"]


def test_unknown_import_path_rejected(capsys):
    assert main(["simulate", "--mechanisms", "no_such_module:Rule"]) == 2
    assert "no_such_module" in capsys.readouterr().err
