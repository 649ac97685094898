"""``search confirm``: re-run a trial's walk-forward windows in Lumibot and compare with the fast engine.

For trial N of a study made by ``search run``, every fold's in-sample and out-of-sample window is
backtested by the fast engine and by the Lumibot engine (:mod:`evaluator.lumibot`, the same fill
model) on the data store the study used, and the two results are compared trade for trade with
:func:`evaluator.parity.compare_results`. The trial is confirmed when every window agrees.

Where the verdict goes (Optuna 5 refuses user attributes on finished trials): the study user attribute
``confirm`` (``{"candidates": [{"trial", "passed", "summary", "windows", ...}]}``, the form
``search promote`` reads, one entry per trial, replaced on a re-run) and
``<study folder>/confirm/trial_<N>.json`` with every window's full report.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import optuna
from optuna.trial import TrialState

from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.market import load_market
from evaluator.parity import ParityReport, compare_results
from search.gate import GateSetupError, _open_study, _store_for, load_study_space, records_folder
from search.paths import DATA_ROOT_ENV, STUDIES_ROOT_ENV
from search.provenance import package_versions
from search.study import json_safe, storage_url

__all__ = ["CONFIRM_ATTR", "ConfirmResult", "confirm", "confirm_trial"]

#: The study user attribute holding the verdicts (``search promote`` reads it).
CONFIRM_ATTR = "confirm"


@dataclass
class WindowCheck:
    fold: int
    window: str  # "in_sample" | "out_of_sample"
    start: dt.date
    end: dt.date
    report: ParityReport
    seconds: float


@dataclass
class ConfirmResult:
    study_name: str
    trial: int
    windows: list[WindowCheck] = field(default_factory=list)
    path: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.windows) and all(w.report.ok for w in self.windows)

    @property
    def summary(self) -> str:
        bad = [w for w in self.windows if not w.report.ok]
        trades = sum(w.report.n_trades[1] for w in self.windows)
        if not bad:
            return f"lumibot matches the fast engine on {len(self.windows)} windows ({trades} trades)"
        first = bad[0]
        detail = (first.report.other + first.report.trade_mismatches + list(first.report.metric_mismatches))[
            :1
        ]
        return (
            f"{len(bad)} of {len(self.windows)} windows differ; first: fold {first.fold} {first.window} "
            f"{first.start}..{first.end}: {detail[0] if detail else 'equity'}"
        )


def confirm_trial(
    study_name: str,
    trial_number: int,
    *,
    storage: str | None = None,
    data_root: str | None = None,
    studies_root: Path | None = None,
    echo: Callable[[str], None] = print,
) -> ConfirmResult:
    """Re-run trial ``trial_number``'s folds in both engines, compare, and store the verdict (see module doc)."""
    from evaluator import fast, lumibot
    from search.paths import studies_root as default_root

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(studies_root) if studies_root is not None else default_root()
    study = _open_study(storage_url(storage, root), study_name)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    trial = trials.get(trial_number)
    if trial is None:
        raise GateSetupError(
            f"study {study_name!r} has no trial {trial_number}; it holds trials "
            f"{min(trials, default=0)}..{max(trials, default=-1)}"
        )
    if trial.state != TrialState.COMPLETE:
        raise GateSetupError(f"trial {trial_number} of {study_name!r} is {trial.state.name}, not COMPLETE")
    space = load_study_space(study)
    values = dict(trial.params)
    spec = space.build(values)
    folds = study.user_attrs.get("folds") or []
    if not folds:
        raise GateSetupError(
            f"study {study_name!r} does not record its folds; it was not made by `search run`"
        )
    store = _store_for(study, data_root)
    market = load_market(store, spec, space.data.start, space.data.end)
    result = ConfirmResult(study.study_name, trial_number)
    for fold in folds:
        for window, start_key, end_key in (
            ("in_sample", "train_start", "train_end"),
            ("out_of_sample", "test_start", "test_end"),
        ):
            start, end = dt.date.fromisoformat(fold[start_key]), dt.date.fromisoformat(fold[end_key])
            began = time.perf_counter()
            report = compare_results(
                fast.run(spec, market, start, end), lumibot.run(spec, market, start, end)
            )
            check = WindowCheck(int(fold["index"]), window, start, end, report, time.perf_counter() - began)
            result.windows.append(check)
            echo(
                f"fold {check.fold} {window:<13} {start}..{end}: "
                f"{'parity' if report.ok else 'DIFFERENT'} ({report.n_trades[1]} trades, {check.seconds:.1f} s)"
            )
    _store_verdict(study, result, records_folder(study, root), spec.model_dump_json())
    return result


def _store_verdict(study: optuna.Study, result: ConfirmResult, records_dir: Path, spec_json: str) -> None:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    windows = [
        {
            "fold": w.fold,
            "window": w.window,
            "start": str(w.start),
            "end": str(w.end),
            "ok": w.report.ok,
            "n_trades": list(w.report.n_trades),
            "max_price_diff": w.report.max_price_diff,
            "max_equity_diff": w.report.max_equity_diff,
        }
        for w in result.windows
    ]
    folder = records_dir / "confirm"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"trial_{result.trial}.json"
    detail = {
        "study": result.study_name,
        "trial": result.trial,
        "passed": result.passed,
        "summary": result.summary,
        "confirmed_utc": stamp,
        "fill_model_version": FILL_MODEL_VERSION,
        "lumibot": package_versions().get("lumibot"),
        "spec": json.loads(spec_json),
        "windows": [
            dict(row, report=w.report.to_dict()) for row, w in zip(windows, result.windows, strict=True)
        ],
    }
    path.write_text(json.dumps(json_safe(detail), indent=2))
    result.path = path
    entry = {
        "trial": result.trial,
        "passed": result.passed,
        "summary": result.summary,
        "confirmed_utc": stamp,
        "fill_model_version": FILL_MODEL_VERSION,
        "windows": windows,
        "file": str(path),
    }
    current = study.user_attrs.get(CONFIRM_ATTR)
    candidates = list(current.get("candidates") or []) if isinstance(current, dict) else []
    candidates = [c for c in candidates if int(c.get("trial", -1)) != result.trial] + [entry]
    candidates.sort(key=lambda c: int(c["trial"]))
    study.set_user_attr(CONFIRM_ATTR, json_safe({"candidates": candidates, "folder": str(folder)}))


@click.command("confirm")
@click.option("--study", "study_name", required=True, help="Study name (see `search studies`).")
@click.option(
    "--trial", "trial_number", type=click.IntRange(min=0), required=True, help="Trial number to confirm."
)
@click.option(
    "--storage",
    default=None,
    help="Optuna storage: a database URL (sqlite:///..., postgresql://...) or journal:PATH "
    f"(default: sqlite at <studies root>/farm.db; studies root = ${STUDIES_ROOT_ENV} or ./studies).",
)
@click.option(
    "--data",
    "data_root",
    default=None,
    help=f"Parquet store (default: the store the study recorded; ${DATA_ROOT_ENV} is not used).",
)
def confirm(study_name: str, trial_number: int, storage: str | None, data_root: str | None) -> None:
    """Re-run a trial's walk-forward windows in Lumibot and record whether it trades like the fast engine.

    Exits with status 1 when a window differs (the differences are printed and stored).
    """
    try:
        result = confirm_trial(
            study_name, trial_number, storage=storage, data_root=data_root, echo=click.echo
        )
    except (GateSetupError, NotImplementedError) as exc:
        raise click.ClickException(str(exc)) from None
    for w in result.windows:
        if not w.report.ok:
            click.echo(f"\nfold {w.fold} {w.window} {w.start}..{w.end}:\n{w.report.summary(5)}")
    click.echo(
        f"\ntrial {result.trial}: {'CONFIRMED' if result.passed else 'NOT confirmed'}: {result.summary}"
    )
    click.echo(f"details: {result.path}")
    if not result.passed:
        raise SystemExit(1)
