"""Tests of the game configuration: presets, immutability, validation and the TOML form."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from pathlib import Path

import pytest

from strategic_env.config import ConfigError, GameConfig, field_names, load_config, preset

# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------


def test_paper_preset_sizes() -> None:
    config = preset("paper")
    assert config.n_labelers == 5
    assert config.feedback_dim == 1
    assert config.horizon == 1000
    assert config.space == "cube"


def test_paper_preset_types() -> None:
    config = preset("paper")
    assert config.truth_beta == (2.0, 2.0)
    assert config.noise_sigma == pytest.approx((0.05, 0.10, 0.15, 0.20, 0.25))
    assert config.bias is None
    assert config.bias_scale == 0.0
    assert config.fixed_types


def test_paper_preset_game_rules() -> None:
    config = preset("paper")
    assert config.reveal_prob == 1.0
    assert config.utility == "influence"
    assert config.discount == 0.99
    assert config.loss == "quadratic"
    assert config.action_mode == "report"
    assert config.feedback_per_slot is None


def test_diverse_preset_bias() -> None:
    config = preset("diverse")
    assert config.bias == ((0.0,), (0.1,), (-0.1,), (0.2,), (-0.2,))


def test_diverse_preset_keeps_paper_noise() -> None:
    assert preset("diverse").noise_sigma == preset("paper").noise_sigma


def test_preset_overrides_apply() -> None:
    config = preset("paper", horizon=50, mechanism="mean")
    assert config.horizon == 50
    assert config.mechanism == "mean"


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(ConfigError) as error:
        preset("nonexistent")
    assert "nonexistent" in str(error.value)
    assert "paper" in str(error.value)
    assert "diverse" in str(error.value)


def test_bias_scalar_per_labeler_expands_to_k() -> None:
    config = preset("diverse", feedback_dim=3)
    assert config.bias[1] == (0.1, 0.1, 0.1)


def test_observation_features_are_reordered() -> None:
    config = GameConfig(observation_features=("time_left", "preference"))
    assert config.observation_features == ("preference", "time_left")


# ---------------------------------------------------------------------------
# Immutability
# ---------------------------------------------------------------------------


def test_field_assignment_raises() -> None:
    config = preset("paper")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.horizon = 10  # type: ignore[misc]
    assert config.horizon == 1000


def test_mechanism_params_item_assignment_raises() -> None:
    config = preset("paper", mechanism_params={"eta": 0.3})
    with pytest.raises(TypeError):
        config.mechanism_params["eta"] = 0.9  # type: ignore[index]
    assert config.mechanism_params["eta"] == 0.3


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda params: params.update(eta=0.9), id="update"),
        pytest.param(lambda params: params.pop("eta"), id="pop"),
        pytest.param(lambda params: params.clear(), id="clear"),
        pytest.param(lambda params: params.setdefault("loss", "absolute"), id="setdefault"),
        pytest.param(lambda params: params.popitem(), id="popitem"),
        pytest.param(lambda params: params.__delitem__("eta"), id="delitem"),
    ],
)
def test_mechanism_params_methods_raise(mutate) -> None:
    config = preset("paper", mechanism_params={"eta": 0.3})
    with pytest.raises(TypeError):
        mutate(config.mechanism_params)
    assert dict(config.mechanism_params) == {"eta": 0.3}


def test_mechanism_params_inplace_merge_raises() -> None:
    config = preset("paper", mechanism_params={"eta": 0.3})
    params = config.mechanism_params
    with pytest.raises(TypeError):
        params |= {"eta": 0.9}  # type: ignore[operator]
    assert dict(config.mechanism_params) == {"eta": 0.3}


def test_mechanism_params_copies_caller_dict() -> None:
    params = {"eta": 0.3}
    config = preset("paper", mechanism_params=params)
    params["eta"] = 0.9
    assert config.mechanism_params["eta"] == 0.3


@pytest.mark.parametrize(
    "clone",
    [
        pytest.param(copy.deepcopy, id="deepcopy"),
        pytest.param(lambda config: pickle.loads(pickle.dumps(config)), id="pickle"),
    ],
)
def test_config_clone_stays_immutable(clone) -> None:
    config = preset("diverse", mechanism_params={"eta": 0.3})
    cloned = clone(config)
    assert cloned == config
    with pytest.raises(TypeError):
        cloned.mechanism_params["eta"] = 0.9  # type: ignore[index]


def test_config_is_hashable_and_equal() -> None:
    first = preset("paper", mechanism_params={"eta": 0.3})
    second = preset("paper", mechanism_params={"eta": 0.3})
    assert first == second
    assert hash(first) == hash(second)


def test_to_dict_has_plain_values() -> None:
    values = preset("diverse", mechanism_params={"eta": 0.3}).to_dict()
    assert set(values) == set(field_names())
    assert type(values["mechanism_params"]) is dict
    assert values["mechanism_params"] == {"eta": 0.3}


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

# Each row is a case id, overrides of the paper preset, the field that the error message must
# name and the text of the invalid value that it must show.
INVALID_VALUES = [
    ("negative horizon", {"horizon": -1}, "horizon", "-1"),
    ("zero horizon", {"horizon": 0}, "horizon", "0"),
    ("zero labelers", {"n_labelers": 0}, "n_labelers", "0"),
    ("sigma wrong length", {"noise_sigma": (0.1, 0.2)}, "noise_sigma", "(0.1, 0.2)"),
    ("negative sigma", {"noise_sigma": (0.1, -0.2, 0.1, 0.1, 0.1)}, "noise_sigma", "-0.2"),
    ("nan sigma", {"noise_sigma": (0.1, math.nan, 0.1, 0.1, 0.1)}, "noise_sigma", "nan"),
    ("infinite sigma", {"noise_sigma": (0.1, 0.1, math.inf, 0.1, 0.1)}, "noise_sigma", "inf"),
    ("bias above one", {"bias": (0.0, 0.0, 1.5, 0.0, 0.0)}, "bias", "1.5"),
    ("bias below minus one", {"bias": (0.0, -1.25, 0.0, 0.0, 0.0)}, "bias", "-1.25"),
    ("bias wrong length", {"bias": (0.0, 0.1)}, "bias", "(0.0, 0.1)"),
    ("reveal_prob above one", {"reveal_prob": 1.5}, "reveal_prob", "1.5"),
    ("discount above one", {"discount": 1.5}, "discount", "1.5"),
    ("utility_mix negative", {"utility_mix": -0.1}, "utility_mix", "-0.1"),
    ("unknown loss", {"loss": "hinge"}, "loss", "hinge"),
    ("unknown utility", {"utility": "fame"}, "utility", "fame"),
    ("unknown action_mode", {"action_mode": "nudge"}, "action_mode", "nudge"),
    ("unknown space", {"space": "sphere"}, "space", "sphere"),
    ("simplex with k one", {"space": "simplex"}, "space", "simplex"),
    ("feedback_per_slot above n", {"feedback_per_slot": 6}, "feedback_per_slot", "6"),
    ("feedback_per_slot zero", {"feedback_per_slot": 0}, "feedback_per_slot", "0"),
    ("unknown observation feature", {"observation_features": ("preference", "colour")}, "observation_features", "colour"),
    ("empty observation features", {"observation_features": ()}, "observation_features", "()"),
    ("bool horizon", {"horizon": True}, "horizon", "True"),
    ("bool n_labelers", {"n_labelers": True}, "n_labelers", "True"),
    ("float horizon", {"horizon": 10.0}, "horizon", "10.0"),
    ("truth_beta nonpositive", {"truth_beta": (0.0, 2.0)}, "truth_beta", "(0.0, 2.0)"),
    ("sigma_range reversed", {"sigma_range": (0.3, 0.1)}, "sigma_range", "(0.3, 0.1)"),
    ("mechanism_params not mapping", {"mechanism_params": [1]}, "mechanism_params", "[1]"),
    ("empty mechanism", {"mechanism": ""}, "mechanism", "''"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "shown"),
    [pytest.param(overrides, field, shown, id=case) for case, overrides, field, shown in INVALID_VALUES],
)
def test_invalid_value_raises_config_error(overrides: dict, field: str, shown: str) -> None:
    with pytest.raises(ConfigError) as error:
        preset("paper", **overrides)
    message = str(error.value)
    assert field in message
    assert shown in message


def test_config_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        GameConfig(horizon=0)


def test_n_labelers_needs_matching_sigma() -> None:
    config = GameConfig(n_labelers=3, noise_sigma=(0.1, 0.2, 0.3))
    assert config.n_labelers == 3
    with pytest.raises(ConfigError, match="noise_sigma"):
        GameConfig(n_labelers=3)


def test_simplex_with_k_three_is_valid() -> None:
    config = preset("paper", feedback_dim=3, space="simplex")
    assert config.space == "simplex"
    assert config.feedback_dim == 3


# ---------------------------------------------------------------------------
# replace
# ---------------------------------------------------------------------------


def test_replace_returns_changed_copy() -> None:
    config = preset("paper")
    changed = config.replace(horizon=20)
    assert changed.horizon == 20
    assert config.horizon == 1000


def test_replace_revalidates_values() -> None:
    with pytest.raises(ConfigError) as error:
        preset("paper").replace(reveal_prob=2.0)
    assert "reveal_prob" in str(error.value)
    assert "2.0" in str(error.value)


def test_replace_revalidates_cross_field() -> None:
    with pytest.raises(ConfigError, match="noise_sigma"):
        preset("paper").replace(n_labelers=4)


def test_replace_unknown_field_raises() -> None:
    with pytest.raises(ConfigError) as error:
        preset("paper").replace(horizn=20)
    assert "horizn" in str(error.value)
    assert "horizon" in str(error.value)


# ---------------------------------------------------------------------------
# TOML files
# ---------------------------------------------------------------------------


def write_toml(folder: Path, text: str) -> Path:
    path = folder / "game.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_preset_key(tmp_path: Path) -> None:
    config = load_config(write_toml(tmp_path, 'preset = "diverse"\n'))
    assert config == preset("diverse")


def test_toml_without_preset_is_paper(tmp_path: Path) -> None:
    config = load_config(write_toml(tmp_path, "horizon = 200\n"))
    assert config == preset("paper", horizon=200)


def test_toml_field_values(tmp_path: Path) -> None:
    text = (
        'preset = "paper"\n'
        "horizon = 300\n"
        'mechanism = "online_weighted"\n'
        "noise_sigma = [0.1, 0.1, 0.2, 0.2, 0.3]\n"
        'observation_features = ["preference", "weight"]\n'
        "[mechanism_params]\n"
        "eta = 0.25\n"
    )
    config = load_config(write_toml(tmp_path, text))
    assert config.horizon == 300
    assert config.mechanism == "online_weighted"
    assert config.noise_sigma == (0.1, 0.1, 0.2, 0.2, 0.3)
    assert config.observation_features == ("preference", "weight")
    assert dict(config.mechanism_params) == {"eta": 0.25}


def test_toml_keyword_overrides_win(tmp_path: Path) -> None:
    config = load_config(write_toml(tmp_path, "horizon = 300\n"), horizon=40)
    assert config.horizon == 40


def test_toml_unknown_key_raises(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "horizon = 300\nlabelers = 4\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "labelers" in str(error.value)
    assert str(path) in str(error.value)


def test_toml_invalid_syntax_raises(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "horizon = = 300\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "invalid TOML" in str(error.value)
    assert str(path) in str(error.value)


def test_toml_missing_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "not found" in str(error.value)
    assert str(path) in str(error.value)


def test_toml_invalid_value_names_field(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "reveal_prob = 1.5\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "reveal_prob" in str(error.value)
    assert "1.5" in str(error.value)


def test_toml_unknown_preset_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nonexistent"):
        load_config(write_toml(tmp_path, 'preset = "nonexistent"\n'))
