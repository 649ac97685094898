"""A :class:`SpecSpace`: a strategy spec whose values may be search parameters.

The YAML file has a ``params`` section of distributions and a ``spec`` section where any value
may be ``$name`` (the whole value) or contain ``$name`` inside a signal expression::

    params:
      fast: {int: [5, 30]}
      slow: {int: [20, 120], step: 5}
      use_trail: {choice: [false, true]}
      trail_pct: {float: [0.02, 0.15], when: {use_trail: true}}
    spec:
      entry: {long: "crosses_above(sma(close, $fast), sma(close, $slow))"}
      exits: {trailing: {pct: $trail_pct}}

A parameter with ``when`` is only drawn when the condition holds; when it is inactive, the
mapping that holds its reference is dropped (above: no trailing stop at all).

A ``sum`` parameter is never drawn: it is the sum of its active terms, so a space can order values by
construction (a final target = the first target + a positive step can never sit below the first)::

    params:
      first_tp: {float: [0.05, 0.30]}
      tp_step: {float: [0.02, 0.30]}
      final_tp: {sum: [first_tp, tp_step]}

An inactive term counts as absent; with no active term the sum is inactive too.

Sampling goes through a :class:`ParamSource` (an Optuna trial is one; :class:`RandomSource` is
another), so this package never imports Optuna.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from spec_space.models import StrategySpec

Scalar = bool | int | float | str | None
_REF_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_INACTIVE = object()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_range(low: float, high: float, *, log: bool, stepped: bool, kind: str, log_step: str) -> None:
    """A ``[low, high]`` distribution range: ordered, and positive without a step on a log scale."""
    if low > high:
        raise ValueError(f"low {low:g} is above high {high:g}; write [{high:g}, {low:g}]")
    if log and (low <= 0 or stepped):
        raise ValueError(f"a log-scale {kind} needs low > 0 and {log_step}")


class IntParam(_Strict):
    # "int" and "float" are the YAML keys; as attribute names they would shadow the builtins
    int_range: tuple[int, int] = Field(alias="int", description="[low, high] inclusive")
    step: int = Field(1, ge=1)
    log: bool = False
    default: int | None = Field(None, description="value for single backtests (default: the middle)")
    when: dict[str, Scalar] | None = None

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        _check_range(*self.int_range, log=self.log, stepped=self.step != 1, kind="int", log_step="step 1")
        return self


class FloatParam(_Strict):
    float_range: tuple[float, float] = Field(alias="float", description="[low, high] inclusive")
    step: float | None = Field(None, gt=0)
    log: bool = False
    default: float | None = Field(None, description="value for single backtests (default: the middle)")
    when: dict[str, Scalar] | None = None

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        _check_range(*self.float_range, log=self.log, stepped=self.step is not None, kind="float", log_step="no step")
        return self


class ChoiceParam(_Strict):
    choice: list[Scalar] = Field(min_length=1)
    default: Scalar = Field(None, description="value for single backtests (default: the first choice)")
    when: dict[str, Scalar] | None = None


class SumParam(_Strict):
    """A value computed from other number parameters (never sampled): the sum of its active terms."""

    sum_of: list[str] = Field(alias="sum", min_length=1, description="names of int, float or sum params")
    when: dict[str, Scalar] | None = None


_PARAM_KINDS = {"int": "IntParam", "float": "FloatParam", "choice": "ChoiceParam", "sum": "SumParam"}


def _param_kind(value: Any) -> str | None:
    """The kind a parameter's mapping names by its key (``int`` / ``float`` / ``choice`` / ``sum``), so that
    a mistake is reported against that one model rather than as one error per union member."""
    if isinstance(value, IntParam | FloatParam | ChoiceParam | SumParam):
        return type(value).__name__
    if not isinstance(value, Mapping):
        return None
    kinds = [tag for key, tag in _PARAM_KINDS.items() if key in value]
    return kinds[0] if len(kinds) == 1 else None


# Tags are the class names: the loader drops capitalised union members from error locations.
Param = Annotated[
    Annotated[IntParam, Tag("IntParam")]
    | Annotated[FloatParam, Tag("FloatParam")]
    | Annotated[ChoiceParam, Tag("ChoiceParam")]
    | Annotated[SumParam, Tag("SumParam")],
    Discriminator(
        _param_kind,
        custom_error_type="param_kind",
        custom_error_message="a parameter is one mapping with exactly one of the keys int: [low, high], "
        "float: [low, high], choice: [values, ...] or sum: [params, ...]",
    ),
]


class Objective(_Strict):
    metric: str
    direction: Literal["maximize", "minimize"]


class Constraint(_Strict):
    metric: str
    op: Literal[">=", "<="]
    value: float

    @property
    def name(self) -> str:
        """The constraint's key on a trial (``trial.set_constraint``), e.g. ``'n_trades >= 10'``."""
        return f"{self.metric} {self.op} {self.value:g}"


class DataWindow(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _order(self) -> DataWindow:
        if self.start > self.end:
            raise ValueError(f"data.start {self.start} is after data.end {self.end}")
        return self


class WalkForward(_Strict):
    scheme: Literal["rolling", "anchored"] = "rolling"
    train_days: int = Field(40, ge=2)
    test_days: int = Field(10, ge=1)
    embargo_days: int = Field(0, ge=0)
    folds: int = Field(6, ge=1, le=50)
    holdout_days: int | None = Field(
        None,
        ge=1,
        description="sessions at the end of the data kept out of the search (the out-of-sample lockbox that "
        "search gate reads); default: 2 x test_days",
    )

    @property
    def holdout_sessions(self) -> int:
        return self.holdout_days if self.holdout_days is not None else 2 * self.test_days


class SpecSpace(_Strict):
    """A search space of strategies: distributions plus a spec template, with the study's settings."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    data: DataWindow
    walk_forward: WalkForward = Field(default_factory=WalkForward)
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="sharpe", direction="maximize")], min_length=1
    )
    constraints: list[Constraint] = Field(default_factory=list)
    gates: dict[str, Any] | None = Field(None, description="gate pipeline overrides (see evaluator.gates)")
    params: dict[str, Param] = Field(default_factory=dict)
    spec: dict[str, Any]
    provenance: dict[str, Any] | None = Field(None, description="who wrote this space (seeding agents)")

    @model_validator(mode="after")
    def _references(self) -> SpecSpace:
        used = set(_references(self.spec))
        unknown = used - set(self.params)
        if unknown:
            raise ValueError(
                f"spec refers to undefined params: {', '.join(sorted('$' + u for u in unknown))}"
            )
        for name, param in self.params.items():
            if isinstance(param, SumParam):
                for term in param.sum_of:
                    if not isinstance(self.params.get(term), IntParam | FloatParam | SumParam):
                        raise ValueError(
                            f"params.{name}.sum: {term!r} is not an int, float or sum parameter of this space; "
                            "a sum adds number parameters"
                        )
        terms = {t for p in self.params.values() if isinstance(p, SumParam) for t in p.sum_of}
        unused = set(self.params) - used - terms - {k for p in self.params.values() if p.when for k in p.when}
        if unused:
            raise ValueError(f"params never used in spec: {', '.join(sorted(unused))}")
        for name, param in self.params.items():
            for parent in param.when or {}:
                if parent not in self.params:
                    raise ValueError(f"params.{name}.when refers to undefined param {parent!r}")
        _param_order(self.params)  # raises on cycles
        return self

    # -- sampling -----------------------------------------------------------------------------

    def suggest(self, source: ParamSource) -> dict[str, Scalar]:
        """Draw every active parameter from ``source`` in dependency order; inactive ones are absent."""
        values: dict[str, Scalar] = {}
        for name in _param_order(self.params):
            param = self.params[name]
            if param.when and any(values.get(k, _INACTIVE) != v for k, v in param.when.items()):
                continue
            if isinstance(param, SumParam):
                continue  # computed by build() from the drawn values, so stored trials need no copy
            if isinstance(param, IntParam):
                values[name] = source.suggest_int(
                    name, param.int_range[0], param.int_range[1], step=param.step, log=param.log
                )
            elif isinstance(param, FloatParam):
                values[name] = source.suggest_float(
                    name, param.float_range[0], param.float_range[1], step=param.step, log=param.log
                )
            else:
                values[name] = source.suggest_categorical(name, list(param.choice))
        return values

    def build(self, values: Mapping[str, Scalar]) -> StrategySpec:
        """The concrete spec for a set of parameter values (raises ValidationError on a bad combination)."""
        return StrategySpec.model_validate(substitute(self.spec, self.resolved(values)))

    def resolved(self, values: Mapping[str, Scalar]) -> dict[str, Scalar]:
        """``values`` as a spec is built from them: values of parameters whose ``when`` does not hold are
        dropped, and every active ``sum`` parameter is computed (a given one is recomputed)."""
        out = {k: v for k, v in values.items() if k not in self.params}
        for name in _param_order(self.params):
            param = self.params[name]
            if not self._holds(param, out):
                continue
            if not isinstance(param, SumParam):
                if name in values:
                    out[name] = values[name]
                continue
            terms = [out[t] for t in param.sum_of if t in out]
            if terms:
                # round away binary noise (0.1 + 0.2) so printed specs read like the YAML
                out[name] = round(sum(terms), 10)  # type: ignore[arg-type]
        return out

    @staticmethod
    def _holds(param: Param, values: Mapping[str, Scalar]) -> bool:
        """Whether ``param``'s ``when`` condition holds for ``values`` (no condition: it does)."""
        return not param.when or all(values.get(k, _INACTIVE) == v for k, v in param.when.items())

    def sample(self, seed: int) -> tuple[dict[str, Scalar], StrategySpec]:
        values = self.suggest(RandomSource(seed))
        return values, self.build(values)

    def content_hash(self) -> str:
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True).encode()
        ).hexdigest()

    def size_estimate(self) -> float:
        """Number of distinct points (continuous floats count as 100), to warn when a space dwarfs the budget."""
        total = 1.0
        for param in self.params.values():
            if isinstance(param, IntParam):
                total *= (param.int_range[1] - param.int_range[0]) // param.step + 1
            elif isinstance(param, SumParam):
                continue  # not a dimension: computed from others
            elif isinstance(param, FloatParam):
                total *= (
                    100
                    if param.step is None
                    else math.floor((param.float_range[1] - param.float_range[0]) / param.step) + 1
                )
            else:
                total *= len(param.choice)
        return total


# --------------------------------------------------------------------------- parameter sources


class ParamSource(Protocol):
    """What :meth:`SpecSpace.suggest` needs; ``optuna.trial.Trial`` satisfies it."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


class RandomSource:
    """Uniform draws from a seeded numpy generator (``search spec sample``, tests)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if log:
            return int(round(math.exp(self._rng.uniform(math.log(low), math.log(high)))))
        return int(low + step * self._rng.integers(0, (high - low) // step + 1))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        if log:
            return float(math.exp(self._rng.uniform(math.log(low), math.log(high))))
        if step is not None:
            # round away binary noise (1.2000000000000002) so printed specs read like the YAML
            return round(float(low + step * self._rng.integers(0, math.floor((high - low) / step + 1e-9) + 1)), 10)
        return float(self._rng.uniform(low, high))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[int(self._rng.integers(0, len(choices)))]


class DefaultSource:
    """Each parameter's ``default`` (else the middle of its range, or the first choice), with overrides."""

    def __init__(self, space: SpecSpace, overrides: Mapping[str, Scalar] | None = None) -> None:
        self._space = space
        self._overrides = dict(overrides or {})
        unknown = set(self._overrides) - set(space.params)
        if unknown:
            raise KeyError(
                f"unknown parameter(s) {', '.join(sorted(unknown))}; the space has {', '.join(space.params)}"
            )
        for name in sorted(self._overrides):
            param = space.params[name]
            if isinstance(param, SumParam):
                raise KeyError(
                    f"parameter {name} is computed ({' + '.join(param.sum_of)}), not drawn; set its terms instead"
                )

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if name in self._overrides:
            return int(self._overrides[name])  # type: ignore[arg-type]
        param = self._space.params[name]
        if param.default is not None:
            return int(param.default)  # type: ignore[arg-type]
        return int(low + step * (((high - low) // step) // 2))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        if name in self._overrides:
            return float(self._overrides[name])  # type: ignore[arg-type]
        param = self._space.params[name]
        if param.default is not None:
            return float(param.default)  # type: ignore[arg-type]
        mid = math.sqrt(low * high) if log else (low + high) / 2
        return float(low + step * round((mid - low) / step)) if step else float(mid)

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        param = self._space.params[name]
        return param.default if param.default is not None else choices[0]


class FixedSource:
    """Returns given values (re-building a trial's spec from its stored parameters)."""

    def __init__(self, values: Mapping[str, Scalar]) -> None:
        self._values = dict(values)

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(f"no value recorded for parameter {name!r}")
        return self._values[name]

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._get(name))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return float(self._get(name))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._get(name)


# --------------------------------------------------------------------------- substitution


def _references(node: Any) -> list[str]:
    if isinstance(node, str):
        return _REF_RE.findall(node)
    if isinstance(node, Mapping):
        return [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def substitute(node: Any, values: Mapping[str, Scalar]) -> Any:
    """Replace ``$name`` references; a mapping holding an inactive whole-value reference is dropped."""
    result = _substitute(node, values)
    return None if result is _INACTIVE else result


def _substitute(node: Any, values: Mapping[str, Scalar]) -> Any:
    if isinstance(node, str):
        whole = _REF_RE.fullmatch(node.strip())
        if whole:
            return values.get(whole.group(1), _INACTIVE)
        missing = [r for r in _REF_RE.findall(node) if r not in values]
        if missing:
            raise ValueError(f"expression {node!r} uses inactive parameter(s) {', '.join(missing)}")
        return _REF_RE.sub(lambda m: _literal(values[m.group(1)]), node)
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            sub = _substitute(value, values)
            if sub is _INACTIVE:
                if isinstance(value, str):
                    return _INACTIVE  # this block holds an inactive parameter: drop the block...
                continue  # ...and its parent just loses that key
            out[key] = sub
        return out
    if isinstance(node, list):
        items = [_substitute(v, values) for v in node]
        return [v for v in items if v is not _INACTIVE]
    return node


def _literal(value: Scalar) -> str:
    if isinstance(value, str):
        return json.dumps(value).replace('"', "'")
    return repr(value)


def _param_order(params: Mapping[str, Param]) -> list[str]:
    """Parents before children (``when``), otherwise sorted by name so sampling order is deterministic."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"params have a cycle in 'when' or 'sum': {' -> '.join((*chain, name))}")
        state[name] = 1
        param = params.get(name)
        parents = set(param.when or {}) if param else set()
        if isinstance(param, SumParam):
            parents |= set(param.sum_of)
        for parent in sorted(parents):
            visit(parent, (*chain, name))
        state[name] = 2
        order.append(name)

    for name in sorted(params):
        visit(name, ())
    return order


def check_space(space: SpecSpace, samples: int = 16) -> None:
    """Build a few random concrete specs so a space whose combinations cannot validate fails at load time."""
    for seed in range(samples):
        values = space.suggest(RandomSource(seed))
        try:
            space.build(values)
        except ValidationError:
            raise
        except ValueError as exc:
            raise ValueError(f"with params {values}: {exc}") from exc
