"""``search gate`` end to end on real studies made by the search driver (inline, synthetic SPY bars)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from optuna_dashboard import _note as dashboard_note

from data.store import Store
from evaluator.gates import NOT_EVALUATED, GateConfig, GateConfigError
from evaluator.metrics import sharpe_ratio
from evaluator.overfitting import (
    deflated_sharpe_ratio,
    effective_number_of_trials,
    null_sharpe_variance,
    probability_of_backtest_overfitting,
    walk_forward_efficiency,
)
from search.cli import main
from search.gate import GateRunConfig, run_gates
from search.gate_config import apply_overrides, resolve_gate_config
from search.records import read_record, record_path
from search.run import RunConfig, run_search
from search.study import open_storage, storage_url
from search.study_access import select_candidates
from spec_space.loader import load_space
from tests.search.conftest import END, START, write_space

SINGLE = [{"metric": "sharpe", "direction": "maximize"}]


def _quiet(_: str) -> None:
    pass


def make_study(root: Path, store: str, space: Path, trials: int) -> optuna.Study:
    summary = run_search(
        RunConfig(
            space_path=space,
            trials=trials,
            use_ray=False,
            workers=1,
            data_root=store,
            studies_root=root,
            progress=False,
        ),
        echo=_quiet,
    )
    return optuna.load_study(study_name=summary.study_name, storage=open_storage(storage_url(None, root)))


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, sample_store: str) -> dict[str, Any]:
    """A 24-trial single-objective study (default gates run on its top 3)."""
    root = tmp_path_factory.mktemp("gate_studies")
    space = write_space(root, "gate_small", objectives=SINGLE)
    study = make_study(root, sample_store, space, 24)
    summary = run_gates(GateRunConfig(study="gate_small", top=3, studies_root=root), echo=_quiet)
    return {"root": root, "study": study, "summary": summary, "store": sample_store, "space": space}


def _restore(env: dict[str, Any]) -> None:
    """Put the module study's gate folder back to the fixture's run (tests that re-gate it call this)."""
    run_gates(GateRunConfig(study="gate_small", top=3, studies_root=env["root"]), echo=_quiet)


@pytest.fixture
def regate(gated: dict[str, Any]) -> Any:
    """The module study for a test that re-gates it; its fixture gate run is restored afterwards."""
    yield gated
    _restore(gated)


def _reload(env: dict[str, Any]) -> optuna.Study:
    return optuna.load_study(study_name="gate_small", storage=open_storage(storage_url(None, env["root"])))


def _note(study: optuna.Study, number: int) -> str:
    trial = study.trials[number]
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return str(dashboard_note.get_note_from_system_attrs(attrs, trial._trial_id)["body"])


def _stitched(record: Any) -> np.ndarray:
    return np.concatenate([f.val_returns for f in sorted(record.folds, key=lambda f: f.fold)])


def test_verdicts_in_csv_study_attr_and_trial_notes(gated):
    summary = gated["summary"]
    study = _reload(gated)
    folder = gated["root"] / "gate_small" / "gates"
    assert summary.folder == folder
    # candidates: the best feasible COMPLETE trials by the IS objective
    expected = [t.number for t in select_candidates(study, 3)]
    assert [c.number for c in summary.candidates] == expected
    values = {t.number: t.values[0] for t in study.trials if t.values}
    assert values[expected[0]] >= values[expected[1]] >= values[expected[2]]

    table = pl.read_csv(folder / "gates.csv")
    assert table.get_column("trial").to_list() == expected
    assert table.get_column("rank").to_list() == [1, 2, 3]
    for gate in GateConfig.default().gates:
        assert f"{gate.name}_status" in table.columns

    attr = study.user_attrs["gate"]
    for c, row, stored in zip(
        summary.candidates, table.iter_rows(named=True), attr["candidates"], strict=True
    ):
        assert row["passed"] == c.verdict.passed == stored["passed"]
        assert stored["trial"] == c.number and stored["summary"] == c.verdict.summary()
        assert [r["name"] for r in stored["results"]] == [g.name for g in GateConfig.default().gates]
        note = _note(study, c.number)
        assert "search gate verdict" in note
        assert ("PASSED" in note) == c.verdict.passed
        for r in c.verdict.results:
            assert r.name in note
        for name in ("holdout_trades.csv", "validation_trades.csv", "daily.csv", "metrics.json", "dsr.json", "bootstrap.json"):
            assert (folder / f"candidate_{c.rank}" / name).is_file()
    # trials outside the top 3 carry no verdict note
    others = [t.number for t in study.trials if t.number not in expected]
    assert all("search gate verdict" not in _note(study, n) for n in others)


def test_dsr_wfe_and_kpis_read_the_holdout_and_the_records_reproduce(gated):
    summary = gated["summary"]
    study = _reload(gated)
    records_dir = gated["root"] / "gate_small"
    complete = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    records = {n: read_record(record_path(records_dir, n)) for n in complete}
    validation = {n: _stitched(r) for n, r in records.items()}
    assert len({v.size for v in validation.values()}) == 1  # one fold layout: the same validation sessions
    sharpes = np.array([sharpe_ratio(v, periods_per_year=1) for v in validation.values()])
    n_eff = effective_number_of_trials(np.column_stack(list(validation.values())))
    gates_json = json.loads((summary.folder / "gates.json").read_text())
    assert gates_json["study_stats"]["n_trials_raw"] == len(records) == 24
    assert gates_json["study_stats"]["n_trials_eff"] == n_eff
    assert 1 <= n_eff <= 24
    holdout = study.user_attrs["holdout"]
    sessions = [str(d) for d in Store(gated["store"]).sessions("SPY", START, END)]
    assert holdout == {"start": sessions[-10], "end": sessions[-1], "days": 10}
    last_validation = max(f["test_end"] for f in study.user_attrs["folds"])
    assert sessions.index(holdout["start"]) - sessions.index(last_validation) - 1 == 1  # the embargo

    for c in summary.candidates:
        folder = summary.folder / f"candidate_{c.rank}"
        daily = pl.read_csv(folder / "daily.csv")
        assert set(daily.get_column("window").to_list()) == {"is", "validation", "holdout"}
        held = daily.filter(pl.col("window") == "holdout")
        assert [str(d) for d in held.get_column("date").to_list()] == sessions[-10:]
        held_returns = held.get_column("return").to_numpy()
        # the gates read the holdout: DSR of its returns against the trials' validation Sharpes
        dsr_file = json.loads((folder / "dsr.json").read_text())
        # V[SR] of a skill-less Sharpe over the trials' validation sessions, not the trials' spread
        null = null_sharpe_variance(int(np.median([v.size for v in validation.values()])))
        assert gates_json["study_stats"]["sr_variance_null"] == pytest.approx(null)
        expected = deflated_sharpe_ratio(held_returns, trial_sharpes=sharpes, n_trials=n_eff, sr_variance=null)
        expected_raw = deflated_sharpe_ratio(held_returns, trial_sharpes=sharpes, n_trials=24, sr_variance=null)
        spread = deflated_sharpe_ratio(held_returns, trial_sharpes=sharpes, n_trials=n_eff)
        assert c.values["dsr_spread"] == pytest.approx(spread.dsr, rel=1e-12, abs=1e-15)
        assert dsr_file["effective"]["dsr"] == pytest.approx(expected.dsr, rel=1e-12, abs=1e-15)
        assert dsr_file["raw"]["dsr"] == pytest.approx(expected_raw.dsr, rel=1e-12, abs=1e-15)
        assert dsr_file["raw"]["dsr"] <= dsr_file["effective"]["dsr"]  # more trials, higher bar
        assert c.values["dsr_single"] == pytest.approx(expected.dsr, rel=1e-12, abs=1e-15)
        # three candidates judged on the holdout: the gated DSR is held to a family of three tests
        assert c.values["holdout_tests"] == 3
        assert c.values["dsr"] == pytest.approx(max(0.0, 1.0 - 3 * (1.0 - expected.dsr)), rel=1e-12, abs=1e-15)
        is_returns = np.concatenate([f.is_returns for f in records[c.number].folds])
        assert c.values["wfe"] == pytest.approx(walk_forward_efficiency(is_returns, held_returns), nan_ok=True)

        metrics = json.loads((folder / "metrics.json").read_text())
        trades = pl.read_csv(folder / "holdout_trades.csv") if (folder / "holdout_trades.csv").stat().st_size else None
        held_trades = 0 if trades is None else trades.height
        assert metrics["holdout"]["n_trades"] == held_trades == c.values["n_trades"]
        assert metrics["holdout"]["sharpe"] == pytest.approx(sharpe_ratio(held_returns), nan_ok=True)
        assert metrics["holdout_sessions"] == 10
        # the fast re-run of the validation windows reproduces the study's records exactly
        validation_trades = pl.read_csv(folder / "validation_trades.csv")
        recorded_trades = sum(f.val_metrics["n_trades"] for f in records[c.number].folds)
        assert metrics["rerun"]["matches_record"] is True
        assert validation_trades.height == recorded_trades == metrics["validation"]["n_trades"]
        assert sorted(set(validation_trades.get_column("fold").to_list())) <= [0, 1, 2]
        assert metrics["validation"]["sharpe"] == pytest.approx(sharpe_ratio(validation[c.number]))
        stitched = daily.filter(pl.col("window") == "validation").get_column("stitched_equity").to_numpy()
        assert stitched[-1] == pytest.approx(100_000 * np.prod(1 + validation[c.number]))

        boot = json.loads((folder / "bootstrap.json").read_text())
        assert len(boot["max_drawdowns"]) == 2000 and boot["n_trades"] == held_trades
        assert boot["p50"] <= boot["p95"] <= boot["p99"]


def test_bonferroni_holds_a_probability_to_its_family():
    from search.gate import bonferroni

    assert bonferroni(0.99, 1) == pytest.approx(0.99)
    assert bonferroni(0.99, 5) == pytest.approx(0.95)  # five tests at 0.99 each keep 5 % family-wise
    assert bonferroni(0.9, 5) == pytest.approx(0.5) and bonferroni(0.9, 20) == 0.0
    assert bonferroni(0.99, 0) == pytest.approx(0.99)


def test_pbo_matrix_built_from_the_records(gated):
    """Independent construction: validation return where a session is in a test window, else the first fold's IS."""
    study = _reload(gated)
    records_dir = gated["root"] / "gate_small"
    by_date: dict[int, dict[Any, float]] = {}
    for t in study.trials:
        record = read_record(record_path(records_dir, t.number))
        series: dict[Any, float] = {}
        for f in sorted(record.folds, key=lambda f: f.fold):
            series.update(zip(f.val_dates.tolist(), f.val_returns.tolist(), strict=True))
        for f in sorted(record.folds, key=lambda f: f.fold):
            for d, r in zip(f.is_dates.tolist(), f.is_returns.tolist(), strict=True):
                series.setdefault(d, r)
        by_date[t.number] = series
    dates = sorted(set().union(*by_date.values()))
    matrix = np.array([[by_date[n].get(d, 0.0) for n in sorted(by_date)] for d in dates])
    expected = probability_of_backtest_overfitting(matrix, n_blocks=16)
    pbo = json.loads((gated["summary"].folder / "pbo.json").read_text())
    assert pbo["n_sessions"] == len(dates) and pbo["n_trials"] == 24 and pbo["n_blocks"] == 16
    assert pbo["pbo"] == pytest.approx(expected.pbo)
    assert np.allclose(pbo["logits"], expected.logits)
    assert len(pbo["logits"]) == 12870
    assert all(c.values["pbo"] == pytest.approx(expected.pbo) for c in gated["summary"].candidates)


def test_failing_dsr_rejects_before_kpis_are_read(regate, tmp_path):
    # a DSR is a probability: >= 1.01 can never pass, whatever the synthetic data does
    gates_file = tmp_path / "strict.yaml"
    gates_file.write_text(yaml.safe_dump({"dsr": 1.01, "pbo": 1.0, "wfe": None}))
    summary = run_gates(
        GateRunConfig(study="gate_small", top=3, studies_root=regate["root"], gates_file=gates_file),
        echo=_quiet,
    )
    assert summary.sources == ["defaults", str(gates_file)]
    table = pl.read_csv(summary.folder / "gates.csv")
    study = _reload(regate)
    for c, row in zip(summary.candidates, table.iter_rows(named=True), strict=True):
        v = c.verdict
        assert not v.passed and v.rejected_at_stage == "overfitting"
        assert [r.name for r in v.failures] == ["dsr"]
        assert v.failures[0].reason.startswith("dsr ") and v.failures[0].reason.endswith("< 1.01 required")
        kpis = [r for r in v.results if r.stage == "kpi"]
        assert [r.name for r in kpis] == ["max_drawdown", "sharpe", "win_rate", "n_trades"]
        assert all(not r.evaluated and r.value is None and r.reason == NOT_EVALUATED for r in kpis)
        assert row["reasons"] == v.failures[0].reason
        for name in ("max_drawdown", "sharpe", "win_rate", "n_trades"):
            assert row[f"{name}_status"] == "not evaluated" and row[name] is None
        assert row["dsr_status"] == "fail" and row["pbo_status"] == "pass"
        assert "not evaluated" in _note(study, c.number)
    stored = study.user_attrs["gate"]["candidates"][0]["results"]
    assert [r["evaluated"] for r in stored] == [True, True, False, False, False, False]


def test_kpis_are_evaluated_once_the_overfitting_gates_pass(regate, tmp_path):
    gates_file = tmp_path / "lenient.yaml"
    gates_file.write_text(yaml.safe_dump({"dsr": 0.0, "pbo": 1.0, "wfe": None, "n_trades": 10}))
    summary = run_gates(
        GateRunConfig(study="gate_small", top=2, studies_root=regate["root"], gates_file=gates_file),
        echo=_quiet,
    )
    for c in summary.candidates:
        v = c.verdict
        assert v.rejected_at_stage != "overfitting"
        kpi = {r.name: r for r in v.results if r.stage == "kpi"}
        assert all(r.evaluated for r in kpi.values())
        metrics = json.loads((summary.folder / f"candidate_{c.rank}" / "metrics.json").read_text())
        held = metrics["holdout"]
        assert kpi["n_trades"].value == held["n_trades"] and kpi["n_trades"].passed == (held["n_trades"] >= 10)
        assert kpi["sharpe"].value == pytest.approx(held["sharpe"], nan_ok=True)
        assert kpi["sharpe"].passed == (held["sharpe"] >= 0.8)
        assert kpi["win_rate"].passed == (held["win_rate"] >= 0.55)
        assert v.passed == all(r.passed for r in v.results)
    # the third candidate of the earlier run is no longer gated: its note is gone, the folder too
    study = _reload(regate)
    assert len(study.user_attrs["gate"]["candidates"]) == 2
    assert not (summary.folder / "candidate_3").exists()
    dropped = regate["summary"].candidates[2].number
    assert "search gate verdict" not in _note(study, dropped)


def test_gate_config_from_the_space_then_the_file(tmp_path, sample_store):
    space_gates = {
        "sharpe": 1.5,
        "win_rate": None,
        "boot_dd": {"metric": "max_drawdown_p95", "op": "<=", "threshold": 0.3, "stage": "overfitting"},
    }
    space = write_space(tmp_path, "gate_cfg", objectives=SINGLE, gates=space_gates)
    make_study(tmp_path, sample_store, space, 8)
    summary = run_gates(GateRunConfig(study="gate_cfg", top=1, studies_root=tmp_path), echo=_quiet)
    names = [g.name for g in summary.config.gates]
    assert names == ["dsr", "pbo", "wfe", "boot_dd", "max_drawdown", "sharpe", "n_trades"]
    assert summary.sources == ["defaults", "space 'gate_cfg'"]
    assert next(g for g in summary.config.gates if g.name == "sharpe").threshold == 1.5
    boot = next(r for r in summary.candidates[0].verdict.results if r.name == "boot_dd")
    assert boot.evaluated and boot.value == pytest.approx(summary.candidates[0].bootstrap.p95)

    override = tmp_path / "gates.yaml"
    override.write_text(yaml.safe_dump({"sharpe": {"threshold": 2.0}, "boot_dd": None}))
    summary = run_gates(
        GateRunConfig(study="gate_cfg", top=1, studies_root=tmp_path, gates_file=override), echo=_quiet
    )
    assert summary.sources == ["defaults", "space 'gate_cfg'", str(override)]
    assert [g.name for g in summary.config.gates] == [
        "dsr",
        "pbo",
        "wfe",
        "max_drawdown",
        "sharpe",
        "n_trades",
    ]
    assert next(g for g in summary.config.gates if g.name == "sharpe").threshold == 2.0
    stored = json.loads((summary.folder / "gates.json").read_text())["config"]["gates"]
    assert [g["name"] for g in stored] == ["dsr", "pbo", "wfe", "max_drawdown", "sharpe", "n_trades"]
    # resolve_gate_config is what run_gates used
    config, _ = resolve_gate_config(load_space(space), override)
    assert config == summary.config


def test_override_errors_name_the_source_and_gate(tmp_path):
    default = GateConfig.default()
    with pytest.raises(GateConfigError, match=r"space 'x': gate 'nope': null removes a gate"):
        apply_overrides(default, {"nope": None}, source="space 'x'")
    with pytest.raises(GateConfigError, match=r"f.yaml: gate 'sharpe': expected a threshold number"):
        apply_overrides(default, {"sharpe": "high"}, source="f.yaml")
    with pytest.raises(GateConfigError, match=r"cannot be combined with per-gate overrides \(sharpe\)"):
        apply_overrides(default, {"gates": [], "sharpe": 1.0}, source="f.yaml")
    with pytest.raises(GateConfigError, match=r"gate .new_gate.: stage: Field required"):
        apply_overrides(
            default, {"new_gate": {"metric": "sharpe", "op": ">=", "threshold": 1}}, source="f.yaml"
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"calmar_gate": {"metric": "calmer", "op": ">=", "threshold": 1, "stage": "kpi"}})
    )
    with pytest.raises(GateConfigError, match=r"'calmar_gate' \(metric 'calmer'\).*use one of dsr"):
        resolve_gate_config(None, bad)
    full = apply_overrides(
        default,
        {"gates": [{"metric": "sharpe", "op": ">=", "threshold": 1.0, "stage": "kpi"}]},
        source="f.yaml",
    )
    assert [g.name for g in full.gates] == ["sharpe"]


def test_gate_cli_prints_the_table_and_fails_clearly(regate, monkeypatch):
    monkeypatch.setenv("FARM_STUDIES", str(regate["root"]))
    runner = CliRunner()
    result = runner.invoke(main, ["gate", "--study", "gate_small", "--top", "2", "--bootstrap", "200"])
    assert result.exit_code == 1, result.output  # a negative verdict: no candidate of this study passes
    assert "0 of 2 candidate(s) passed" in result.output
    assert "gates of gate_small" in result.output and "verdict" in result.output
    assert "candidate(s) passed" in result.output and "PBO = " in result.output
    result = runner.invoke(main, ["gate", "--study", "no_such_study"])
    assert result.exit_code == 2
    assert "no study 'no_such_study'" in result.output and "gate_small" in result.output
    result = runner.invoke(main, ["gate", "--study", "gate_small", "--blocks", "7"])
    assert result.exit_code == 2 and "must be even" in result.output
