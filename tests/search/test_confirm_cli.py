"""``search confirm``: a trial's walk-forward windows re-run in Lumibot, compared, and recorded."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner

import spec_space
from search.confirm import confirm_trial
from search.confirm_cli import confirm
from search.run import RunConfig, run_search
from search.study_access import TrialRef
from search.verdicts import CONFIRM_ATTR
from tests.search.conftest import write_space


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory, sample_store: str) -> tuple[str, Path]:
    """Two trials of an SMA cross over 2 folds of 3 training and 2 test sessions (short Lumibot runs)."""
    root = tmp_path_factory.mktemp("studies")
    space = write_space(
        root,
        name="sma_confirm",
        data={"start": "2024-01-02", "end": "2024-01-17"},
        walk_forward={"scheme": "rolling", "train_days": 3, "test_days": 2, "embargo_days": 0, "folds": 2},
        constraints=[],
        params={"fast": {"int": [3, 8]}, "slow": {"int": [20, 30], "step": 5}},
    )
    summary = run_search(
        RunConfig(
            space_path=space,
            trials=2,
            use_ray=False,
            data_root=sample_store,
            studies_root=root,
            progress=False,
        ),
        echo=lambda _: None,
    )
    assert summary.complete == 2, summary
    return summary.study_name, root


def test_confirm_records_parity_per_window(small_study: tuple[str, Path]) -> None:
    name, root = small_study
    lines: list[str] = []
    result = confirm_trial(TrialRef(name, 1, studies_root=root), echo=lines.append)
    assert result.passed, [w.report.summary() for w in result.windows]
    assert [(w.fold, w.window) for w in result.windows] == [
        (0, "in_sample"),
        (0, "validation"),
        (1, "in_sample"),
        (1, "validation"),
        (-1, "holdout"),  # the window the KPI gates read
    ]
    holdout = optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'farm.db'}").user_attrs["holdout"]
    assert (str(result.windows[-1].start), str(result.windows[-1].end)) == (holdout["start"], holdout["end"])
    assert len(lines) == 5 and all("parity" in line for line in lines)
    assert sum(w.report.n_trades[1] for w in result.windows) > 0
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'farm.db'}")
    (entry,) = study.user_attrs[CONFIRM_ATTR]["candidates"]
    assert (entry["trial"], entry["passed"]) == (1, True)
    detail = json.loads(Path(entry["file"]).read_text())
    assert detail["passed"] is True and len(detail["windows"]) == 5
    assert detail["windows"][0]["report"]["ok"] is True


def test_confirm_cli(small_study: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    name, root = small_study
    monkeypatch.setenv("FARM_STUDIES", str(root))
    runner = CliRunner()
    done = runner.invoke(confirm, ["--study", name, "--trial", "0"])
    assert done.exit_code == 0, done.output
    assert "trial 0: CONFIRMED" in done.output
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'farm.db'}")
    assert 0 in [c["trial"] for c in study.user_attrs[CONFIRM_ATTR]["candidates"]]
    missing = runner.invoke(confirm, ["--study", name, "--trial", "7"])
    assert missing.exit_code == 2 and "has no trial 7" in missing.output
    unknown = runner.invoke(confirm, ["--study", "nope", "--trial", "0"])
    assert unknown.exit_code == 2 and "no study 'nope'" in unknown.output


# --------------------------------------------------------------------------- forex and futures

FX_FUTURES_DATA = {"start": "2024-01-16", "end": "2024-02-23"}  # 28 sessions after a warm-up fortnight


@pytest.fixture(scope="module")
def fx_futures_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Synthetic EURUSD (24x5) and MES (Globex) bars, 2024-01-02 .. 2024-02-23."""
    from data.ingest import ingest
    from data.synth import generate

    root = tmp_path_factory.mktemp("fx_futures")
    generate(root / "flat", tickers=["C:EURUSD", "MES"], start=dt.date(2024, 1, 2), end=dt.date(2024, 2, 23), seed=5)
    report = ingest(root / "flat", root / "store", workers=1)
    assert not report.failed, report.summary()
    return str(root / "store")


def _shipped_space_on_sample_data(folder: Path, name: str, extended: bool) -> Path:
    """The shipped space ``name`` with its defaults and a window that fits the sample store: two folds of
    8 training and 4 validation sessions and a 6-session holdout, no trade-count constraint."""
    space = yaml.safe_load((Path(spec_space.__file__).parent / f"{name}.yaml").read_text())
    space.update(
        name=f"{name}_confirm",
        data=FX_FUTURES_DATA,
        walk_forward={"scheme": "rolling", "train_days": 8, "test_days": 4, "embargo_days": 0, "folds": 2, "holdout_days": 6},
        constraints=[],
    )
    if name == "mes_orb":  # a candidate that breaks out most days, so each window trades
        space["params"].update(volume_ratio={"float": [0.8, 0.9]}, buffer={"float": [0.0, 0.5], "step": 0.25})
    if extended:  # around the clock, through the daily break: the continuous Lumibot clock
        space["spec"]["session"] = "extended"
        space["spec"]["entry"].pop("window_end")
        space["spec"]["exits"].pop("eod_flat_time")
    path = folder / f"{name}_confirm.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@pytest.mark.parametrize(("space", "extended"), [("forex_trend", False), ("mes_orb", False), ("mes_orb", True)])
def test_confirm_cli_confirms_forex_and_futures_candidates(
    space: str, extended: bool, fx_futures_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = run_search(
        RunConfig(
            space_path=_shipped_space_on_sample_data(tmp_path, space, extended),
            trials=1,
            use_ray=False,
            data_root=fx_futures_store,
            studies_root=tmp_path,
            progress=False,
        ),
        echo=lambda _: None,
    )
    assert summary.complete == 1, repr(summary)[:3000]
    monkeypatch.setenv("FARM_STUDIES", str(tmp_path))
    done = CliRunner().invoke(confirm, ["--study", summary.study_name, "--trial", "0"])
    assert done.exit_code == 0, done.output
    assert "trial 0: CONFIRMED" in done.output
    study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{tmp_path / 'farm.db'}")
    (entry,) = study.user_attrs[CONFIRM_ATTR]["candidates"]
    detail = json.loads(Path(entry["file"]).read_text())
    assert entry["passed"] is True and len(detail["windows"]) == 5
    trades = [w["report"]["n_trades"] for w in detail["windows"]]
    assert all(fast == lumi for fast, lumi in trades)
    assert sum(fast for fast, _ in trades) >= 5, trades  # the windows trade: the comparison means something
