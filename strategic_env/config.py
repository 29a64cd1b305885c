"""Validated, immutable configuration of the strategic feedback game, with presets.

A :class:`GameConfig` is checked field by field on construction. An invalid value raises
:class:`ConfigError`, whose message names the field, the value and the allowed range.
Configurations are built from a preset (:func:`preset`), from keyword overrides, or from
a TOML file (:func:`load_config`) whose keys are the field names plus an optional
``preset`` key naming the starting point.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SPACES = ("cube", "simplex")
LOSSES = ("quadratic", "absolute")
UTILITIES = ("influence", "reputation", "mixed")
ACTION_MODES = ("report", "shift")

# Observation features in the order they appear in a labeler's observation vector.
OBSERVATION_FEATURES = (
    "preference",
    "weight",
    "asked",
    "time_left",
    "previous_aggregate",
    "previous_truth",
    "revealed",
    "type",
)
DEFAULT_OBSERVATION_FEATURES = OBSERVATION_FEATURES[:-1]

MAX_NOISE_SIGMA = 5.0
MAX_LABELERS = 100_000
MAX_HORIZON = 10_000_000


class ConfigError(ValueError):
    """Raised when a configuration field has an invalid value."""


def _fail(field: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid {field}={value!r}: {allowed}")


def _check_int(field: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(field, value, f"expected an integer in [{low}, {high}]")


def _check_float(field: str, value: Any, low: float, high: float, *, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(field, value, f"expected a finite number in {'(' if open_low else '['}{low}, {high}]")
    if value > high or value < low or (open_low and value == low):
        _fail(field, value, f"expected a finite number in {'(' if open_low else '['}{low}, {high}]")


def _check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(field, value, f"expected one of {', '.join(choices)}")


def _as_float_tuple(field: str, value: Any) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        _fail(field, value, "expected a sequence of numbers")
    raise AssertionError("unreachable")


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """Parameters of one strategic feedback game.

    Attributes:
        n_labelers: number of labelers N.
        feedback_dim: feedback dimension K. K = 1 is a pairwise preference probability.
        horizon: number of slots T in an episode.
        space: feedback space for K > 1: ``"cube"`` ([0, 1]^K scores) or ``"simplex"``
            (a distribution over K outputs). K = 1 requires ``"cube"``.
        truth_beta: (a, b) of the Beta prior of each truth coordinate on the cube.
        truth_dirichlet: concentration of the symmetric Dirichlet prior on the simplex.
        noise_sigma: noise level sigma_i of each labeler, or None to draw the noise
            levels at reset from Uniform(sigma_range).
        bias: systematic bias beta_i of each labeler: one number or a one-element row
            (added to every coordinate), or K numbers per labeler; None for no bias (or, with
            ``bias_scale > 0``, biases drawn at reset from N(0, bias_scale^2), clipped
            to [-1, 1]).
        sigma_range: (low, high) of the noise-level prior used when noise_sigma is None.
        bias_scale: standard deviation of the bias prior used when bias is None.
        reveal_prob: probability rho that the truth is revealed after a slot.
        loss: accuracy loss, ``"quadratic"`` (||r - y||^2 / K) or ``"absolute"``
            (||r - y||_1 / K). Both lie in [0, 1].
        utility: labeler utility, ``"influence"`` (-||a - p||^2 / K), ``"reputation"``
            (change in own weight) or ``"mixed"``.
        utility_mix: lambda of the mixed utility, the weight of influence.
        discount: discount factor gamma of the labelers' utilities over an episode.
        action_mode: ``"report"`` (the action is the report) or ``"shift"`` (the action
            in [-1, 1]^K is added to the preference, so 0 is truthful).
        feedback_per_slot: number M of labelers the platform asks in each slot, sampled
            uniformly; None asks all.
        observation_features: features of a labeler's observation, a subset of
            OBSERVATION_FEATURES, always laid out in that order.
        mechanism: name or import path (``package.module:Class``) of the mechanism.
        mechanism_params: keyword arguments of the mechanism.
    """

    n_labelers: int = 5
    feedback_dim: int = 1
    horizon: int = 1000
    space: str = "cube"
    truth_beta: tuple[float, float] = (2.0, 2.0)
    truth_dirichlet: float = 1.0
    noise_sigma: tuple[float, ...] | None = (0.05, 0.10, 0.15, 0.20, 0.25)
    bias: tuple[tuple[float, ...], ...] | None = None
    sigma_range: tuple[float, float] = (0.05, 0.25)
    bias_scale: float = 0.0
    reveal_prob: float = 1.0
    loss: str = "quadratic"
    utility: str = "influence"
    utility_mix: float = 0.5
    discount: float = 0.99
    action_mode: str = "report"
    feedback_per_slot: int | None = None
    observation_features: tuple[str, ...] = DEFAULT_OBSERVATION_FEATURES
    mechanism: str = "online_weighted"
    mechanism_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_int("n_labelers", self.n_labelers, 1, MAX_LABELERS)
        _check_int("feedback_dim", self.feedback_dim, 1, 1024)
        _check_int("horizon", self.horizon, 1, MAX_HORIZON)
        _check_choice("space", self.space, SPACES)
        if self.space == "simplex" and self.feedback_dim < 2:
            _fail("space", self.space, "the simplex needs feedback_dim >= 2; use 'cube' for K = 1")

        truth_beta = _as_float_tuple("truth_beta", self.truth_beta)
        if len(truth_beta) != 2 or not all(math.isfinite(v) and v > 0 for v in truth_beta):
            _fail("truth_beta", self.truth_beta, "expected two finite numbers > 0, (a, b)")
        object.__setattr__(self, "truth_beta", truth_beta)
        _check_float("truth_dirichlet", self.truth_dirichlet, 0.0, 1e6, open_low=True)

        if self.noise_sigma is not None:
            sigma = _as_float_tuple("noise_sigma", self.noise_sigma)
            if len(sigma) != self.n_labelers:
                _fail("noise_sigma", self.noise_sigma, f"expected {self.n_labelers} values, one per labeler")
            for i, s in enumerate(sigma):
                _check_float(f"noise_sigma[{i}]", s, 0.0, MAX_NOISE_SIGMA)
            object.__setattr__(self, "noise_sigma", sigma)

        if self.bias is not None:
            object.__setattr__(self, "bias", self._normalise_bias(self.bias))

        sigma_range = _as_float_tuple("sigma_range", self.sigma_range)
        if len(sigma_range) != 2 or not 0.0 <= sigma_range[0] <= sigma_range[1] <= MAX_NOISE_SIGMA:
            _fail("sigma_range", self.sigma_range, f"expected (low, high) with 0 <= low <= high <= {MAX_NOISE_SIGMA}")
        object.__setattr__(self, "sigma_range", sigma_range)
        _check_float("bias_scale", self.bias_scale, 0.0, 1.0)
        _check_float("reveal_prob", self.reveal_prob, 0.0, 1.0)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("utility", self.utility, UTILITIES)
        _check_float("utility_mix", self.utility_mix, 0.0, 1.0)
        _check_float("discount", self.discount, 0.0, 1.0)
        _check_choice("action_mode", self.action_mode, ACTION_MODES)
        if self.feedback_per_slot is not None:
            _check_int("feedback_per_slot", self.feedback_per_slot, 1, self.n_labelers)

        features = self.observation_features
        if isinstance(features, str) or not isinstance(features, (list, tuple)) or not all(isinstance(f, str) for f in features):
            _fail("observation_features", features, f"expected a list of names from {', '.join(OBSERVATION_FEATURES)}")
        unknown = [f for f in features if f not in OBSERVATION_FEATURES]
        if unknown or not features:
            _fail("observation_features", features, f"expected a non-empty subset of {', '.join(OBSERVATION_FEATURES)}")
        ordered = tuple(f for f in OBSERVATION_FEATURES if f in features)
        object.__setattr__(self, "observation_features", ordered)

        if not isinstance(self.mechanism, str) or not self.mechanism:
            _fail("mechanism", self.mechanism, "expected a registered mechanism name or 'package.module:Class'")
        if not isinstance(self.mechanism_params, Mapping):
            _fail("mechanism_params", self.mechanism_params, "expected a mapping of keyword arguments")
        object.__setattr__(self, "mechanism_params", _FrozenDict(self.mechanism_params))
        # Resolving the name (and building the rule when parameters are given) checks them here,
        # not at the first game.
        from strategic_env.mechanisms import make, resolve

        try:
            resolve(self.mechanism)
            if self.mechanism_params:
                make(self.mechanism, **self.mechanism_params)
        except ValueError as error:
            raise ConfigError(f"invalid mechanism={self.mechanism!r} with mechanism_params={dict(self.mechanism_params)}: {error}") from None

    def _normalise_bias(self, bias: Any) -> tuple[tuple[float, ...], ...]:
        try:
            rows = list(bias)
        except TypeError:
            _fail("bias", bias, "expected one entry per labeler")
        if len(rows) != self.n_labelers:
            _fail("bias", bias, f"expected {self.n_labelers} entries, one per labeler")
        normalised = []
        for i, row in enumerate(rows):
            values = (float(row),) * self.feedback_dim if isinstance(row, (int, float)) else _as_float_tuple(f"bias[{i}]", row)
            if len(values) == 1:
                values = values * self.feedback_dim
            if len(values) != self.feedback_dim:
                _fail(f"bias[{i}]", row, f"expected one number or {self.feedback_dim} numbers")
            for k, v in enumerate(values):
                _check_float(f"bias[{i}][{k}]", v, -1.0, 1.0)
            normalised.append(values)
        return tuple(normalised)

    @property
    def fixed_types(self) -> bool:
        """Whether every labeler's type is fixed by the configuration (no type prior)."""
        return self.noise_sigma is not None and (self.bias is not None or self.bias_scale == 0.0)

    def replace(self, **changes: Any) -> GameConfig:
        """Return a copy with some fields changed, validated again."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown configuration field(s) {', '.join(unknown)}; known fields: {', '.join(field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain JSON-serialisable values."""
        out = dataclasses.asdict(self)
        out["mechanism_params"] = dict(self.mechanism_params)
        return out


class _FrozenDict(dict):
    """A dict that rejects changes, so a frozen GameConfig stays immutable."""

    def _immutable(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("GameConfig.mechanism_params is immutable; use GameConfig.replace")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _immutable  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))


def field_names() -> tuple[str, ...]:
    """Return the names of the GameConfig fields."""
    return tuple(f.name for f in dataclasses.fields(GameConfig))


PRESETS: dict[str, dict[str, Any]] = {
    # Five labelers of increasing noise, unbiased, one-dimensional feedback.
    "paper": {},
    # The same labelers with diverse systematic biases.
    "diverse": {"bias": (0.0, 0.1, -0.1, 0.2, -0.2)},
    # Twenty unbiased labelers, noise evenly spaced from 0.05 to 0.25.
    "paper_n20": {"n_labelers": 20, "noise_sigma": tuple(round(0.05 + 0.2 * i / 19, 4) for i in range(20))},
}


def preset(name: str, **overrides: Any) -> GameConfig:
    """Build the named preset, with some fields overridden."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    return GameConfig().replace(**{**PRESETS[name], **overrides})


def load_config(path: str | Path, **overrides: Any) -> GameConfig:
    """Read a configuration from a TOML file.

    The file contains field names as keys, and optionally ``preset = "name"`` to start from a
    preset instead of the defaults. Keyword overrides win over the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"invalid TOML in configuration file {path}: {error}") from None
    start = data.pop("preset", "paper")
    unknown = sorted(set(data) - set(field_names()))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {path}; known keys: preset, {', '.join(field_names())}")
    return preset(start, **{**data, **overrides})
