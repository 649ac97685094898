"""Which gates ``search gate`` applies: the defaults, then a space's ``gates`` mapping, then a ``--gates`` file.

Errors name the source (space or file), the gate and the field (:class:`evaluator.gates.GateConfigError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from evaluator.gates import GateConfig, GateConfigError
from evaluator.metrics import METRIC_KEYS
from spec_space.loader import yaml_problem
from spec_space.space import SpecSpace

__all__ = ["GATE_METRICS", "apply_overrides", "resolve_gate_config"]

#: Metrics a gate may test, with what ``search gate`` puts behind each name.
GATE_METRICS: dict[str, str] = {
    "dsr": "deflated Sharpe ratio of the holdout returns, N = effective number of trials, V[SR] = 1/(T-1), "
    "Bonferroni-adjusted for the candidates judged on the holdout",
    "dsr_single": "dsr before the Bonferroni adjustment (this candidate alone)",
    "holdout_tests": "distinct candidates of the study judged on its holdout so far",
    "dsr_raw": "deflated Sharpe ratio of the holdout returns, N = raw count of COMPLETE trials, V[SR] = 1/(T-1), "
    "Bonferroni-adjusted",
    "dsr_spread": "deflated Sharpe ratio of the holdout returns, N effective, V[SR] = the trials' Sharpe spread",
    "psr": "probabilistic Sharpe ratio P(true Sharpe > 0) of the holdout returns",
    "pbo": "probability of backtest overfitting of the study (CSCV); the same for every candidate",
    "wfe": "walk-forward efficiency: annualised mean holdout return / annualised mean IS return",
    "stability_ratio": "median objective of the parameter neighbours / the candidate's objective",
    "stability_within": "fraction of parameter neighbours within 20 % of the candidate's objective",
    "stability_neighbours": "number of parameter neighbours among the study's trials",
    "max_drawdown_p95": "95th percentile of the max drawdown over bootstrap re-orderings of the holdout trades",
    **{key: f"holdout (out-of-sample) {key}" for key in METRIC_KEYS},
}


def apply_overrides(config: GateConfig, overrides: Any, *, source: str) -> GateConfig:
    """``config`` changed by an override mapping (a space's ``gates`` field or a ``--gates`` YAML file).

    Two forms:

    * ``{"gates": [{metric, op, threshold, stage, name?}, ...]}``: a full list that replaces ``config``;
    * gate name -> change, applied to the gate of that name: a number sets its threshold; a mapping
      updates its fields (``metric``, ``op``, ``threshold``, ``stage``); ``null`` / ``false`` removes it;
      an unknown name adds a gate (``metric`` defaults to the name; ``op``, ``threshold``, ``stage``
      are required). Overfitting gates stay ahead of KPI gates.

    Raises:
        GateConfigError: naming ``source``, the gate and the field.
    """
    if overrides is None:
        return config
    if not isinstance(overrides, Mapping):
        raise GateConfigError(
            f"{source}: expected a mapping (gate name -> threshold / fields / null, or a 'gates' list), "
            f"got {type(overrides).__name__}"
        )
    if "gates" in overrides:
        extra = sorted(str(k) for k in overrides if k != "gates")
        if extra:
            raise GateConfigError(
                f"{source}: 'gates' (a full list replacing the defaults) cannot be combined with per-gate "
                f"overrides ({', '.join(extra)}); use one form"
            )
        return GateConfig.from_mapping(overrides, source=source)
    gates: list[dict[str, Any]] = [g.model_dump() for g in config.gates]
    for raw_name, change in overrides.items():
        name = str(raw_name)
        where = f"{source}: gate {name!r}"
        current = next((g for g in gates if g["name"] == name), None)
        if change is None or change is False:
            if current is None:
                raise GateConfigError(
                    f"{where}: null removes a gate, but there is no gate of that name; gates: "
                    f"{', '.join(g['name'] for g in gates) or 'none'}"
                )
            gates.remove(current)
            continue
        if isinstance(change, bool) or not isinstance(change, int | float | Mapping):
            raise GateConfigError(
                f"{where}: expected a threshold number, a mapping of fields (metric, op, threshold, stage) "
                f"or null to remove the gate; got {change!r}"
            )
        fields = {"threshold": change} if isinstance(change, int | float) else dict(change)
        if current is not None:
            current.update(fields)
        else:
            gates.append({"name": name, "metric": name, **fields})
    # stable: each stage keeps its order, overfitting gates first (GateConfig requires it)
    gates.sort(key=lambda g: 0 if g.get("stage") == "overfitting" else 1)
    return _validated(gates, source)


def _validated(gates: list[dict[str, Any]], source: str) -> GateConfig:
    """``GateConfig`` of ``gates`` with errors naming the gate (not its list index) and the field."""
    try:
        return GateConfig.model_validate({"gates": gates})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) >= 2 and loc[0] == "gates" and isinstance(loc[1], int) and loc[1] < len(gates):
                where = f"gate {gates[loc[1]].get('name')!r}"
                field_path = ".".join(str(p) for p in loc[2:]) or "(gate)"
                problems.append(f"{where}: {field_path}: {err['msg']}")
            else:
                problems.append(f"{'.'.join(str(p) for p in loc) or '(top level)'}: {err['msg']}")
        raise GateConfigError(f"{source}: invalid gate configuration: {'; '.join(problems)}") from None


def _check_metrics(config: GateConfig, sources: Sequence[str]) -> None:
    unknown = [g for g in config.gates if g.metric not in GATE_METRICS]
    if unknown:
        listed = ", ".join(f"{g.name!r} (metric {g.metric!r})" for g in unknown)
        raise GateConfigError(
            f"{' + '.join(sources)}: gate(s) {listed} test a metric search gate does not compute; "
            f"use one of {', '.join(GATE_METRICS)}"
        )


def resolve_gate_config(
    space: SpecSpace | None, gates_file: str | Path | None
) -> tuple[GateConfig, list[str]]:
    """The defaults, overridden by ``space.gates``, then by the YAML file ``gates_file``; also the sources."""
    config = GateConfig.default()
    sources = ["defaults"]
    if space is not None and space.gates:
        config = apply_overrides(config, space.gates, source=f"space {space.name!r}: gates")
        sources.append(f"space {space.name!r}")
    if gates_file is not None:
        path = Path(gates_file)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GateConfigError(f"{path}: gate file not found; check the --gates path") from None
        except yaml.YAMLError as exc:
            line, problem = yaml_problem(exc)
            raise GateConfigError(f"{path}:{line or '?'}: not valid YAML: {problem}") from None
        config = apply_overrides(config, data, source=str(path))
        sources.append(str(path))
    _check_metrics(config, sources)
    return config, sources
