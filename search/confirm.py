"""``search confirm`` as a function: re-run a trial's walk-forward windows in Lumibot and compare with the fast engine.

For trial N of a study made by ``search run``, every fold's in-sample and validation window, and the
holdout the KPI gates read, is backtested by the fast engine and by the Lumibot engine (:mod:`evaluator.lumibot`, the same fill
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

import optuna

from data.safe import json_safe
from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.market import load_market
from evaluator.parity import ParityReport, compare_results
from evaluator.walkforward import FoldWindow
from search.provenance import package_versions
from search.study_access import StudySetupError, TrialRef, load_study_space, records_folder, store_for
from search.verdicts import CONFIRM_ATTR, upsert_verdict

__all__ = ["ConfirmResult", "WindowCheck", "confirm_trial"]

@dataclass
class WindowCheck(FoldWindow):
    """One window run by both engines: how their results compare, and how long both runs took."""

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


def confirm_trial(ref: TrialRef, *, echo: Callable[[str], None] = print) -> ConfirmResult:
    """Re-run trial ``ref``'s folds in both engines, compare, and store the verdict (see module doc)."""
    from evaluator import fast, lumibot

    study, trial, root, _ = ref.open()
    space = load_study_space(study)
    values = dict(trial.params)
    spec = space.build(values)
    folds = study.user_attrs.get("folds") or []
    if not folds:
        raise StudySetupError(
            f"study {ref.study!r} does not record its folds; it was not made by `search run`"
        )
    store = store_for(study, ref.data_root)
    market = load_market(store, spec, space.data.start, space.data.end)
    result = ConfirmResult(study.study_name, ref.trial)
    windows = [
        (int(fold["index"]), window, fold[start_key], fold[end_key])
        for fold in folds
        for window, start_key, end_key in (
            ("in_sample", "train_start", "train_end"),
            ("validation", "test_start", "test_end"),
        )
    ]
    holdout = study.user_attrs.get("holdout")
    if holdout:  # the KPI gates read the holdout run: its trades must agree too (fold -1, as in daily.csv)
        windows.append((-1, "holdout", holdout["start"], holdout["end"]))
    for index, window, first, last in windows:
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        began = time.perf_counter()
        report = compare_results(
            fast.run(spec, market, start, end), lumibot.run(spec, market, start, end)
        )
        check = WindowCheck(index, window, start, end, report, time.perf_counter() - began)
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
    upsert_verdict(study, CONFIRM_ATTR, entry, folder=str(folder))
