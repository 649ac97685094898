"""Gate pipeline: stage order, reasons, missing/nan metrics, and configuration loading."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from evaluator.gates import NOT_EVALUATED, GateConfig, GateConfigError, GateSpec, evaluate_gates

GOOD = {
    "dsr": 0.97,
    "pbo": 0.2,
    "wfe": 0.7,
    "max_drawdown": 0.12,
    "sharpe": 1.3,
    "win_rate": 0.6,
    "n_trades": 250.0,
}
KPI_KEYS = {"max_drawdown", "sharpe", "win_rate", "n_trades"}


class KpiTrap(Mapping[str, float]):
    """Values whose KPI entries must never be read: any access to them fails the test."""

    def __init__(self, data: dict[str, float]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> float:
        if key in KPI_KEYS:
            raise AssertionError(f"KPI {key!r} was read although an overfitting gate failed")
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("values were iterated")

    def __len__(self) -> int:
        raise AssertionError("values were sized")


def test_default_config():
    config = GateConfig.default()
    assert [(g.name, g.op, g.threshold, g.stage) for g in config.gates] == [
        ("dsr", ">=", 0.95, "overfitting"),
        ("pbo", "<=", 0.5, "overfitting"),
        ("wfe", ">=", 0.5, "overfitting"),
        ("max_drawdown", "<=", 0.20, "kpi"),
        ("sharpe", ">=", 0.8, "kpi"),
        ("win_rate", ">=", 0.55, "kpi"),
        ("n_trades", ">=", 100, "kpi"),
    ]


def test_all_pass():
    verdict = evaluate_gates(GateConfig.default(), GOOD)
    assert verdict.passed and verdict.rejected_at_stage is None
    assert all(r.passed and r.evaluated for r in verdict.results)
    assert verdict.results[4].reason == "sharpe 1.30 >= 0.80"
    assert verdict.summary() == "passed all gates"


def test_kpi_failures_have_readable_reasons():
    values = GOOD | {"sharpe": 0.61, "max_drawdown": 0.25, "n_trades": 87}
    verdict = evaluate_gates(GateConfig.default(), values)
    assert not verdict.passed and verdict.rejected_at_stage == "kpi"
    reasons = {r.name: r.reason for r in verdict.failures}
    assert reasons == {
        "sharpe": "sharpe 0.61 < 0.80 required",
        "max_drawdown": "max_drawdown 0.25 > 0.20 allowed",
        "n_trades": "n_trades 87 < 100 required",
    }
    sharpe = next(r for r in verdict.results if r.name == "sharpe")
    assert (sharpe.value, sharpe.threshold, sharpe.op, sharpe.passed) == (0.61, 0.8, ">=", False)


def test_overfitting_failure_skips_kpis_without_reading_them():
    values = KpiTrap(GOOD | {"pbo": 0.62})
    verdict = evaluate_gates(GateConfig.default(), values)
    assert not verdict.passed
    assert verdict.rejected_at_stage == "overfitting"
    by_name = {r.name: r for r in verdict.results}
    assert by_name["pbo"].reason == "pbo 0.62 > 0.50 allowed"
    assert by_name["dsr"].passed and by_name["wfe"].passed  # the whole overfitting stage is reported
    for key in KPI_KEYS:
        assert not by_name[key].evaluated and not by_name[key].passed
        assert by_name[key].value is None
        assert by_name[key].reason == NOT_EVALUATED == "not evaluated: rejected by overfitting checks"
    assert [r.name for r in verdict.results] == [g.name for g in GateConfig.default().gates]
    assert verdict.summary() == "rejected at overfitting: pbo 0.62 > 0.50 allowed"


def test_trap_mapping_really_traps():
    with pytest.raises(AssertionError, match="KPI '.*' was read"):
        evaluate_gates(GateConfig.default(), KpiTrap(GOOD))


def test_missing_and_nan_metrics_fail():
    values = {k: v for k, v in GOOD.items() if k != "wfe"}
    verdict = evaluate_gates(GateConfig.default(), values)
    wfe = next(r for r in verdict.results if r.name == "wfe")
    assert (wfe.passed, wfe.value, wfe.reason) == (False, None, "missing")
    assert verdict.rejected_at_stage == "overfitting"

    verdict = evaluate_gates(GateConfig.default(), GOOD | {"sharpe": float("nan")})
    sharpe = next(r for r in verdict.results if r.name == "sharpe")
    assert not sharpe.passed and "nan" in sharpe.reason
    assert verdict.rejected_at_stage == "kpi"


def test_strict_ops_and_close_values():
    config = GateConfig(
        gates=[
            GateSpec(name="dsr_strict", metric="dsr", op=">", threshold=0.95, stage="overfitting"),
            GateSpec(metric="max_drawdown", op="<", threshold=0.2, stage="kpi"),
        ]
    )
    verdict = evaluate_gates(config, {"dsr": 0.95, "max_drawdown": 0.1})
    assert verdict.results[0].reason == "dsr_strict 0.95 <= 0.95 (must be > 0.95)"
    verdict = evaluate_gates(config, {"dsr": 0.9499, "max_drawdown": 0.2})
    assert (
        verdict.results[0].reason == "dsr_strict 0.9499 <= 0.95 (must be > 0.95)"
    )  # enough digits to differ
    verdict = evaluate_gates(config, {"dsr": 0.96, "max_drawdown": 0.2})
    assert verdict.rejected_at_stage == "kpi"
    assert verdict.results[1].reason == "max_drawdown 0.20 >= 0.20 (must be < 0.20)"


def test_only_kpi_gates():
    config = GateConfig(gates=[GateSpec(metric="sharpe", op=">=", threshold=1.0, stage="kpi")])
    assert evaluate_gates(config, {"sharpe": 1.0}).passed
    assert evaluate_gates(config, {"sharpe": 0.99}).rejected_at_stage == "kpi"


def test_from_mapping_and_yaml(tmp_path):
    data = {
        "gates": [
            {"name": "deflated", "metric": "dsr", "op": ">=", "threshold": 0.9, "stage": "overfitting"},
            {"metric": "sharpe", "op": ">=", "threshold": 1, "stage": "kpi"},
        ]
    }
    config = GateConfig.from_mapping(data)
    assert [g.name for g in config.gates] == ["deflated", "sharpe"]

    path = tmp_path / "gates.yaml"
    path.write_text(
        "gates:\n"
        "  - {metric: dsr, op: '>=', threshold: 0.9, stage: overfitting}\n"
        "  - {metric: sharpe, op: '>=', threshold: 1.0, stage: kpi, colour: red}\n"
    )
    with pytest.raises(
        GateConfigError, match=r"gates\.yaml: invalid gate configuration: gates\.1\.colour: Extra"
    ):
        GateConfig.from_yaml(path)
    path.write_text("- just a list\n")
    with pytest.raises(GateConfigError, match="expected a mapping with a 'gates' list"):
        GateConfig.from_yaml(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"gates": [], "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"gates": [{"metric": "x", "op": "==", "threshold": 1, "stage": "kpi"}]}, r"gates\.0\.op"),
        ({"gates": [{"metric": "x", "op": ">=", "threshold": 1, "stage": "other"}]}, r"gates\.0\.stage"),
        ({"gates": [{"metric": "x", "op": ">=", "threshold": float("inf"), "stage": "kpi"}]}, "finite"),
        (
            {
                "gates": [
                    {"metric": "x", "op": ">=", "threshold": 1, "stage": "kpi"},
                    {"metric": "dsr", "op": ">=", "threshold": 1, "stage": "overfitting"},
                ]
            },
            r"gates\[1\] \('dsr', stage 'overfitting'\) comes after the kpi gate gates\[0\]",
        ),
        (
            {
                "gates": [
                    {"metric": "x", "op": ">=", "threshold": 1, "stage": "kpi"},
                    {"metric": "x", "op": "<=", "threshold": 2, "stage": "kpi"},
                ]
            },
            "duplicate gate name 'x'",
        ),
    ],
)
def test_invalid_configs_rejected(data, message):
    with pytest.raises(GateConfigError, match=message):
        GateConfig.from_mapping(data)
