"""Studies made by the real search driver and gate for the report tests (synthetic SPY minute bars)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from search.gate import GateRunConfig, run_gates
from search.report import ReportConfig, make_report
from search.run import RunConfig, run_search
from search.study import open_storage, storage_url
from tests.search.conftest import sample_store, write_space  # noqa: F401 - sample_store is a fixture

__all__ = ["load_study"]


def _quiet(_: str) -> None:
    pass


def load_study(root: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage_url(None, root)))


def _run(root: Path, store: str, space: Path, trials: int) -> None:
    run_search(
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


@pytest.fixture(scope="session")
def gated_report(tmp_path_factory: pytest.TempPathFactory, sample_store: str) -> dict[str, Any]:  # noqa: F811
    """A two-objective study (sharpe, max_drawdown; NSGA-II) of 24 trials, gated (top 3) and reported."""
    root = tmp_path_factory.mktemp("report_studies")
    space = write_space(root, "rep_multi")
    _run(root, sample_store, space, 24)
    gate = run_gates(GateRunConfig(study="rep_multi", top=3, studies_root=root), echo=_quiet)
    summary = make_report(ReportConfig(study="rep_multi", out=root / "out", studies_root=root))
    return {"root": root, "gate": gate, "report": summary, "html": summary.path.read_text(encoding="utf-8")}


@pytest.fixture(scope="session")
def ungated_report(tmp_path_factory: pytest.TempPathFactory, sample_store: str) -> dict[str, Any]:  # noqa: F811
    """A single-objective study of 12 trials, reported before any gate run."""
    root = tmp_path_factory.mktemp("report_single")
    space = write_space(root, "rep_single", objectives=[{"metric": "sharpe", "direction": "maximize"}])
    _run(root, sample_store, space, 12)
    summary = make_report(ReportConfig(study="rep_single", out=root / "out", studies_root=root))
    return {"root": root, "report": summary, "html": summary.path.read_text(encoding="utf-8")}
