"""The gate pipeline: overfitting checks first, then KPI thresholds on out-of-sample results.

A candidate is judged in two stages. The ``overfitting`` stage (DSR, PBO, walk-forward efficiency, ...)
asks whether the result is believable at all; only if every overfitting gate passes are the ``kpi``
gates (drawdown, Sharpe, win rate, trade count) evaluated. KPI values of a rejected candidate are never
read, so a lucky backtest cannot "pass the KPIs" in a report while being statistically meaningless.

A gate whose metric is missing fails with reason ``"missing"``; a ``nan`` value (e.g. Sharpe of a
strategy that never traded) fails too.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Op = Literal[">=", "<=", ">", "<"]
Stage = Literal["overfitting", "kpi"]

STAGES: tuple[Stage, ...] = ("overfitting", "kpi")
NOT_EVALUATED = "not evaluated: rejected by overfitting checks"

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
# What a failing value looks like next to the threshold, for the reason text.
_FAILED_AS = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


class GateSpec(BaseModel):
    """One threshold on one metric, e.g. ``sharpe >= 0.8`` in the ``kpi`` stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="label in reports; defaults to the metric key")
    metric: str = Field(min_length=1, description="key in the values mapping, e.g. 'sharpe', 'dsr'")
    op: Op
    threshold: float
    stage: Stage

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be a finite number")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("name") and data.get("metric"):
            return {**data, "name": data["metric"]}
        return data


class GateConfigError(ValueError):
    """A gate configuration that cannot be used; the message names the source, gate and field."""


class GateConfig(BaseModel):
    """An ordered list of gates: every ``overfitting`` gate must come before the first ``kpi`` gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gates: list[GateSpec]

    @model_validator(mode="after")
    def _order_and_names(self) -> GateConfig:
        seen: set[str] = set()
        kpi_at: int | None = None
        for i, gate in enumerate(self.gates):
            if gate.name in seen:
                raise ValueError(
                    f"gates[{i}]: duplicate gate name {gate.name!r}; give each gate a unique name"
                )
            seen.add(gate.name)
            if gate.stage == "kpi" and kpi_at is None:
                kpi_at = i
            if gate.stage == "overfitting" and kpi_at is not None:
                raise ValueError(
                    f"gates[{i}] ({gate.name!r}, stage 'overfitting') comes after the kpi gate gates[{kpi_at}]; "
                    "list every overfitting gate first: KPI gates only run once all overfitting gates pass"
                )
        return self

    @classmethod
    def default(cls) -> GateConfig:
        """The project's default gates (overfitting first, then KPIs on out-of-sample results)."""
        return cls(
            gates=[
                GateSpec(metric="dsr", op=">=", threshold=0.95, stage="overfitting"),
                GateSpec(metric="pbo", op="<=", threshold=0.5, stage="overfitting"),
                GateSpec(metric="wfe", op=">=", threshold=0.5, stage="overfitting"),
                GateSpec(metric="max_drawdown", op="<=", threshold=0.20, stage="kpi"),
                GateSpec(metric="sharpe", op=">=", threshold=0.8, stage="kpi"),
                GateSpec(metric="win_rate", op=">=", threshold=0.55, stage="kpi"),
                GateSpec(metric="n_trades", op=">=", threshold=100, stage="kpi"),
            ]
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<mapping>") -> GateConfig:
        """Validate a mapping such as ``{"gates": [{"metric": "sharpe", ...}]}``; unknown keys are rejected."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise GateConfigError(f"{source}: invalid gate configuration: {problems}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> GateConfig:
        """Load a YAML file holding the mapping :meth:`from_mapping` takes."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise GateConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise GateConfigError(
                f"{path}: expected a mapping with a 'gates' list at the top level, got {type(data).__name__}"
            )
        return cls.from_mapping(data, source=str(path))


@dataclass(frozen=True)
class GateResult:
    name: str
    metric: str
    stage: Stage
    op: Op
    threshold: float
    value: float | None  # None when missing or not evaluated
    passed: bool
    evaluated: bool
    reason: str


@dataclass(frozen=True)
class Verdict:
    passed: bool
    rejected_at_stage: Stage | None  # first stage with a failed gate
    results: tuple[GateResult, ...]  # one per gate, in configuration order

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if r.evaluated and not r.passed)

    def summary(self) -> str:
        if self.passed:
            return "passed all gates"
        return f"rejected at {self.rejected_at_stage}: " + "; ".join(r.reason for r in self.failures)


def _trim(text: str) -> str:
    """Drop trailing zeros beyond two decimals: 0.9500 -> 0.95, 0.9499 stays."""
    head, dot, decimals = text.partition(".")
    if not dot:  # inf
        return text
    return f"{head}.{decimals[:2]}{decimals[2:].rstrip('0')}"


def _fmt_pair(value: float, threshold: float) -> tuple[str, str]:
    """Format both numbers with the fewest decimals (2..6) that still show them as different."""
    if value.is_integer() and threshold.is_integer() and abs(value) < 1e15 and abs(threshold) < 1e15:
        return f"{int(value)}", f"{int(threshold)}"
    for digits in range(2, 7):
        v, t = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if v != t or value == threshold:
            return _trim(v), _trim(t)
    return f"{value:.6g}", f"{threshold:.6g}"


def _reason(gate: GateSpec, value: float, passed: bool) -> str:
    v, t = _fmt_pair(value, gate.threshold)
    if passed:
        return f"{gate.name} {v} {gate.op} {t}"
    if gate.op == ">=":
        return f"{gate.name} {v} < {t} required"
    if gate.op == "<=":
        return f"{gate.name} {v} > {t} allowed"
    return f"{gate.name} {v} {_FAILED_AS[gate.op]} {t} (must be {gate.op} {t})"


def _gate_result(
    gate: GateSpec, value: float | None, passed: bool, reason: str, *, evaluated: bool = True
) -> GateResult:
    # the result restates its gate field by field (name, metric, op, threshold, stage): a field added to
    # GateSpec and not to GateResult is a TypeError here, not a column silently missing from reports
    return GateResult(**gate.model_dump(), value=value, passed=passed, evaluated=evaluated, reason=reason)


def _check(gate: GateSpec, values: Mapping[str, float]) -> GateResult:
    def result(value: float | None, passed: bool, reason: str) -> GateResult:
        return _gate_result(gate, value, passed, reason)

    try:
        raw = values[gate.metric]
    except KeyError:
        return result(None, False, "missing")
    if raw is None:
        return result(None, False, "missing")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return result(None, False, f"{gate.name}: {raw!r} is not a number")
    if math.isnan(value):
        return result(value, False, f"{gate.name} is nan (undefined for this result)")
    passed = _OPS[gate.op](value, gate.threshold)
    return result(value, passed, _reason(gate, value, passed))


def evaluate_gates(config: GateConfig, values: Mapping[str, float]) -> Verdict:
    """Run the gates of ``config`` against ``values`` (metric key -> number).

    Overfitting gates run first; if any fails, KPI gates are reported as not evaluated and their metrics
    are not looked up at all. Gates of one stage are all evaluated (not short-circuited) so a report
    shows every reason a candidate fails.
    """
    results: list[GateResult] = []
    rejected: Stage | None = None
    for stage in STAGES:
        for gate in config.gates:
            if gate.stage != stage:
                continue
            if rejected is not None:
                results.append(_gate_result(gate, None, False, NOT_EVALUATED, evaluated=False))
                continue
            results.append(_check(gate, values))
        if rejected is None and any(r.stage == stage and not r.passed for r in results):
            rejected = stage
    # Report in configuration order (stages are already contiguous there, so this is the run order too).
    order = {gate.name: i for i, gate in enumerate(config.gates)}
    results.sort(key=lambda r: order[r.name])
    return Verdict(passed=rejected is None, rejected_at_stage=rejected, results=tuple(results))
