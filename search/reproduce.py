"""``search reproduce`` as a function: re-run one trial from its records and compare with what was stored.

For trial N of a study made by ``search run``:

1. **What changed since the study ran**, from the trial's record provenance (the study's provenance for
   records written before trials carried their own):

   ========== ======== ================================================================================
   cause      blocking what is compared
   ========== ======== ================================================================================
   data       yes      the store's manifest hash for the window the trial read (the changed, added and
                       removed source files are named when the study listed them)
   fill_model yes      the fill-model version of the engines
   space      yes      the content hash of the stored space, re-validated by this code
   spec       yes      the concrete spec this code builds from the trial's params vs the stored spec JSON
   params     yes      the record's params vs the study's
   code       no       the project version and git commit (named as the likely cause when results differ)
   packages   no       optuna, lumibot, numba, polars, ray ... versions; and the Python version
   store      no       another store root than the recorded one (the manifest hash decides)
   engine     no       another engine than the study's (compared with the parity tolerances)
   ========== ======== ================================================================================

2. **The re-run**: params -> ``space.build`` -> the stored folds -> the same market window
   (:func:`evaluator.market.load_market` over the space's data window, as the search workers load it)
   -> :func:`evaluator.trial.evaluate_params`.

3. **The comparison**, per fold and window (in-sample, validation): the trade count, every stored
   metric and the daily returns; and the trial's objective values. Exact when the study and the re-run
   both use the fast engine; otherwise within the parity tolerances of
   :func:`evaluator.parity.compare_results` (metrics ``metric_rtol`` / ``metric_atol``, daily returns
   twice ``equity_rtol``: a return is a ratio of two equities each within it).

The trial is reproduced when no blocking cause was found and nothing differs. The verdict goes to the
study user attribute ``reproduce`` (``{"candidates": [{"trial", "passed", "summary", ...}], "folder"}``,
the form ``search promote`` reads; Optuna 5 refuses user attributes on finished trials) and to
``<study folder>/reproduce/trial_<N>.json`` with every finding and window.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from data.safe import finite_float, json_safe
from data.store import Store
from evaluator.engines import ENGINES
from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.market import load_market, signal_symbol
from evaluator.parity import compare_results
from evaluator.trial import TrialOutcome, evaluate_params
from evaluator.walkforward import Fold, FoldWindow
from evaluator.wfo import FoldRecord, TrialRecord
from search.provenance import (
    code_provenance,
    data_files,
    diff_data_files,
    manifest_window,
    spec_hash,
)
from search.records import read_meta, read_record, record_path
from search.study import mask_url, study_sessions
from search.study_access import StudySetupError, TrialRef, load_study_space, records_folder, store_for
from search.verdicts import REPRODUCE_ATTR, upsert_verdict
from spec_space.space import DefaultSource, Objective, SpecSpace

__all__ = [
    "Finding",
    "ReproduceResult",
    "WindowCheck",
    "reproduce_trial",
]

_PARITY = inspect.signature(compare_results).parameters
METRIC_RTOL: float = _PARITY["metric_rtol"].default
METRIC_ATOL: float = _PARITY["metric_atol"].default
RETURN_ATOL: float = 2 * _PARITY["equity_rtol"].default


@dataclass(frozen=True)
class Finding:
    """Something that changed since the study ran; ``blocking`` findings fail the reproduction."""

    cause: str
    blocking: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "blocking": self.blocking, "message": self.message}


@dataclass
class WindowCheck(FoldWindow):
    """One fold window re-run: its trade counts and what differs from the record."""

    trades: tuple[float, float]  # stored, now
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)  # differing: stored, now
    returns: str | None = None  # how the daily returns differ

    @property
    def ok(self) -> bool:
        return not self.metrics and self.returns is None and _same_number(*self.trades, exact=True)

    def describe(self) -> str:
        parts = []
        if not _same_number(*self.trades, exact=True):
            parts.append(f"trades {_n(self.trades[0])} stored vs {_n(self.trades[1])} now")
        parts += [
            f"{name} {_n(a)} vs {_n(b)}" for name, (a, b) in self.metrics.items() if name != "n_trades"
        ][:6]
        if self.returns:
            parts.append(self.returns)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "window": self.window,
            "start": str(self.start),
            "end": str(self.end),
            "ok": self.ok,
            "trades": [finite_float(self.trades[0]), finite_float(self.trades[1])],
            "metric_differences": {k: [finite_float(a), finite_float(b)] for k, (a, b) in self.metrics.items()},
            "returns": self.returns,
        }


@dataclass
class ReproduceResult:
    study_name: str
    trial: int
    engine: str
    stored_engine: str
    exact: bool
    findings: list[Finding] = field(default_factory=list)
    windows: list[WindowCheck] = field(default_factory=list)
    objective_differences: list[str] = field(default_factory=list)
    ran: bool = False
    error: str | None = None
    seconds: float = 0.0
    path: Path | None = None
    now: dict[str, Any] = field(default_factory=dict)  # the present provenance, stored with the verdict

    @property
    def causes(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.blocking]

    @property
    def differs(self) -> bool:
        return bool(self.objective_differences) or any(not w.ok for w in self.windows)

    @property
    def passed(self) -> bool:
        return self.ran and not self.causes and not self.differs

    @property
    def summary(self) -> str:
        how = "exactly" if self.exact else "within the parity tolerances"
        trades = sum(int(w.trades[1]) for w in self.windows if math.isfinite(w.trades[1]))
        if self.passed:
            text = f"reproduced: {len(self.windows)} windows match the records {how} ({trades} trades)"
            if self.warnings:
                text += "; warnings: " + "; ".join(f"{w.cause}: {w.message}" for w in self.warnings)
            return text
        parts = [f"{c.cause}: {c.message}" for c in self.causes]
        if self.error:
            parts.append(f"re-run failed: {self.error}")
        bad = [w for w in self.windows if not w.ok]
        if bad:
            first = bad[0]
            parts.append(
                f"results differ in {len(bad)} of {len(self.windows)} windows; first: fold {first.fold} "
                f"{first.window} {first.start}..{first.end}: {first.describe()}"
            )
        parts += self.objective_differences[:1]
        if self.differs and not self.causes:
            code = [w for w in self.warnings if w.cause == "code"]
            if code:
                parts.append(f"likely cause: code: {code[0].message}")
            else:
                others = [f"{w.cause}: {w.message}" for w in self.warnings]
                parts.append(
                    "no recorded change explains it (same data, space, spec, fill model and code version)"
                    + (f"; also changed: {'; '.join(others)}" if others else "")
                )
        return "NOT reproduced: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study_name,
            "trial": self.trial,
            "passed": self.passed,
            "summary": self.summary,
            "engine": self.engine,
            "stored_engine": self.stored_engine,
            "exact": self.exact,
            "ran": self.ran,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "findings": [f.to_dict() for f in self.findings],
            "objective_differences": self.objective_differences,
            "windows": [w.to_dict() for w in self.windows],
            "tolerances": None
            if self.exact
            else {"metric_rtol": METRIC_RTOL, "metric_atol": METRIC_ATOL, "return_atol": RETURN_ATOL},
            "now": self.now,
        }


# ------------------------------------------------------------------------------------------ helpers


def _n(x: float) -> str:
    if not math.isfinite(x):
        return "undefined"
    return f"{int(x)}" if float(x).is_integer() else f"{x:.6g}"


def _same_number(stored: float, now: float, *, exact: bool) -> bool:
    # records keep undefined metrics (nan, and inf, which JSON cannot hold) as null -> nan
    if not math.isfinite(stored) or not math.isfinite(now):
        return not math.isfinite(stored) and not math.isfinite(now)
    if exact:
        return stored == now
    return abs(stored - now) <= METRIC_ATOL + METRIC_RTOL * max(abs(stored), abs(now))


def _returns_difference(
    stored_dates: np.ndarray,
    stored: np.ndarray,
    dates: np.ndarray,
    now: np.ndarray,
    *,
    exact: bool,
) -> str | None:
    if len(stored_dates) != len(dates) or not np.array_equal(stored_dates, dates):
        return f"daily rows differ: {len(stored_dates)} sessions stored vs {len(dates)} now"
    a, b = np.asarray(stored, np.float64), np.asarray(now, np.float64)
    same_nan = np.isnan(a) == np.isnan(b)
    diff = np.where(np.isnan(a) | np.isnan(b), 0.0, np.abs(a - b))
    bad = ~same_nan | (diff > (0.0 if exact else RETURN_ATOL))
    if not bad.any():
        return None
    first = int(np.flatnonzero(bad)[0])
    return (
        f"daily returns differ on {int(bad.sum())} of {len(a)} sessions (first {dates[first]}: "
        f"{a[first]:.8g} vs {b[first]:.8g}; max diff {float(diff.max()):.3g})"
    )


def _window_results(record: FoldRecord, window: str) -> tuple[Mapping[str, float], np.ndarray, np.ndarray]:
    """(metrics, session dates, daily returns) of ``record``'s ``window``: ``in_sample`` or ``validation``."""
    if window == "in_sample":
        return record.is_metrics, record.is_dates, record.is_returns
    return record.val_metrics, record.val_dates, record.val_returns


def _compare_window(fold: Fold, window: str, stored: FoldRecord, rerun: FoldRecord, *, exact: bool) -> WindowCheck:
    """What differs between the stored and the re-run results of ``fold``'s ``window``."""
    start, end = (
        (fold.train_start, fold.train_end) if window == "in_sample" else (fold.test_start, fold.test_end)
    )
    stored_metrics, *stored_returns = _window_results(stored, window)
    now_metrics, *now_returns = _window_results(rerun, window)
    check = WindowCheck(
        fold.index,
        window,
        start,
        end,
        (float(stored_metrics.get("n_trades", math.nan)), float(now_metrics.get("n_trades", math.nan))),
    )
    for name, value in stored_metrics.items():
        now = float(now_metrics.get(name, math.nan)) if name in now_metrics else None
        if now is None:
            check.metrics[name] = (float(value), math.nan)
        elif not _same_number(float(value), now, exact=exact):
            check.metrics[name] = (float(value), now)
    check.returns = _returns_difference(*stored_returns, *now_returns, exact=exact)
    return check


def compare_outcome(
    stored: TrialRecord, values: Sequence[float], outcome: TrialOutcome, folds: Sequence[Fold], *, exact: bool
) -> tuple[list[WindowCheck], list[str]]:
    """Per-window checks and objective differences of a re-run ``outcome`` against a stored record."""
    now_by_fold: dict[int, FoldRecord] = {f.fold: f for f in outcome.folds}
    stored_by_fold: dict[int, FoldRecord] = {f.fold: f for f in stored.folds}
    windows: list[WindowCheck] = []
    problems: list[str] = []
    for fold in folds:
        old, new = stored_by_fold.get(fold.index), now_by_fold.get(fold.index)
        if old is None or new is None:
            problems.append(f"fold {fold.index}: {'not in the record' if old is None else 'not re-run'}")
            continue
        windows += [_compare_window(fold, window, old, new, exact=exact) for window in ("in_sample", "validation")]
    for i, (a, b) in enumerate(zip(values, outcome.objectives, strict=False)):
        if not _same_number(float(a), float(b), exact=exact):
            problems.append(f"objective {i}: {_n(float(a))} stored vs {_n(float(b))} now")
    if len(values) != len(outcome.objectives):
        problems.append(f"{len(values)} objective values stored, {len(outcome.objectives)} now")
    return windows, problems


def _json_paths(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (for naming what a spec change touched)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(a.keys() | b.keys(), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in a or key not in b:
                out.append(path)
            else:
                out += _json_paths(a[key], b[key], path)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _json_paths(x, y, f"{prefix}[{i}]")
        return out
    return [] if a == b else [prefix or "(root)"]


def _folds(study: optuna.Study) -> list[Fold]:
    stored = study.user_attrs.get("folds") or []
    if not stored:
        raise StudySetupError(
            f"study {study.study_name!r} does not record its folds; it was not made by `search run`"
        )
    return [
        Fold(
            int(f["index"]),
            dt.date.fromisoformat(f["train_start"]),
            dt.date.fromisoformat(f["train_end"]),
            dt.date.fromisoformat(f["test_start"]),
            dt.date.fromisoformat(f["test_end"]),
        )
        for f in stored
    ]


def _stored_files(study: optuna.Study, manifest_hash: str | None) -> dict[str, str] | None:
    """The source-file list recorded with ``manifest_hash`` (the study's, or a resumed session's)."""
    attrs = study.user_attrs
    if manifest_hash is None:
        return None
    if attrs.get("data_manifest_hash") == manifest_hash and isinstance(attrs.get("data_files"), dict):
        return dict(attrs["data_files"])
    for session in reversed(study_sessions(attrs)):
        if session.get("data_manifest_hash") == manifest_hash and isinstance(session.get("data_files"), dict):
            return dict(session["data_files"])
    return None


def _names(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# ------------------------------------------------------------------------------------------ checks


def _data_findings(
    study: optuna.Study, store: Store, stored: Mapping[str, Any], space: SpecSpace
) -> tuple[list[Finding], str | None]:
    """Has the data the trial read changed? Returns the findings and the present manifest hash."""
    findings: list[Finding] = []
    recorded_root = stored.get("data_root")
    if recorded_root and mask_url(store.root) != recorded_root:
        findings.append(
            Finding(
                "store",
                False,
                f"re-run on the store at {mask_url(store.root)}; the study used {recorded_root}",
            )
        )
    window = stored.get("data_manifest_window")
    default = space.build(space.suggest(DefaultSource(space)))  # what `search run` derived the window from
    if window:
        start, end = (dt.date.fromisoformat(d) for d in window)
    else:
        start, end = manifest_window(space, default)
    symbol = stored.get("data_symbol") or signal_symbol(default)
    old_hash = stored.get("data_manifest_hash")
    try:
        now_hash = store.manifest_hash(start, end, [symbol])
    except LookupError as exc:
        findings.append(
            Finding("data", True, f"the store at {mask_url(store.root)} no longer has the data: {exc}")
        )
        return findings, None
    if old_hash is None:
        findings.append(
            Finding("data", False, "the study recorded no data manifest hash; the data cannot be checked")
        )
    elif now_hash != old_hash:
        old_files = _stored_files(study, old_hash)
        detail = ""
        if old_files is not None:
            diff = diff_data_files(old_files, data_files(store, start, end, [symbol]))
            named = [
                f"{label} {_names(diff[key])}"
                for key, label in (("changed", "changed:"), ("added", "added:"), ("removed", "removed:"))
                if diff[key]
            ]
            detail = "; source files " + "; ".join(named) if named else ""
        else:
            detail = "; the study did not list its source files, so the changed ones cannot be named"
        findings.append(
            Finding(
                "data",
                True,
                f"the data store changed since the study ran: manifest hash for {symbol} {start}..{end} is "
                f"{now_hash[:12]}, the trial ran on {str(old_hash)[:12]}{detail}; restore that data or re-run "
                "the study on the current data",
            )
        )
    return findings, now_hash


def _code_findings(
    stored: Mapping[str, Any], now: Mapping[str, Any], study_attrs: Mapping[str, Any]
) -> list[Finding]:
    findings: list[Finding] = []
    current = str(now["fill_model_version"])
    old_fill = stored.get("fill_model_version")
    study_fill = study_attrs.get("fill_model_version")
    if old_fill is None:
        findings.append(Finding("fill_model", False, "the study recorded no fill-model version"))
    elif str(old_fill) != current:
        findings.append(
            Finding(
                "fill_model",
                True,
                f"the fill model changed since the study ran: version {old_fill} then, {current} now "
                "(evaluator/fill_model.py); the engines no longer fill trades the way the records were made",
            )
        )
    elif study_fill is not None and str(study_fill) != current:
        # the trial ran on this fill model but the study began on another: its trials are not comparable
        findings.append(
            Finding(
                "fill_model",
                True,
                f"the study was created under fill model version {study_fill} (its fill_model_version "
                f"attribute), this trial and this code use {current}: the study mixes fill models; re-run it "
                "as a new study",
            )
        )
    code = []
    if stored.get("project_version") is not None and stored.get("project_version") != now["project_version"]:
        code.append(f"project version {stored.get('project_version')} then, {now['project_version']} now")
    old_git, new_git = stored.get("git") or {}, now.get("git") or {}
    if old_git.get("commit") and new_git.get("commit") and old_git["commit"] != new_git["commit"]:
        code.append(f"git commit {old_git['commit'][:12]} then, {new_git['commit'][:12]} now")
    elif old_git.get("dirty") or new_git.get("dirty"):
        code.append("the checkout had uncommitted changes (the commit does not pin the code)")
    if code:
        findings.append(Finding("code", False, "; ".join(code)))
    old_pk, new_pk = stored.get("packages") or {}, now.get("packages") or {}
    changed = [f"{k} {old_pk[k]} -> {new_pk.get(k)}" for k in sorted(old_pk) if old_pk[k] != new_pk.get(k)]
    if stored.get("python") and stored.get("python") != now["python"]:
        changed.append(f"python {stored.get('python')} -> {now['python']}")
    if changed:
        findings.append(Finding("packages", False, "versions changed: " + ", ".join(changed)))
    return findings


def _stored_provenance(study: optuna.Study, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's provenance (record meta) over the study's (records from before trials carried one)."""
    keys = (
        "space_hash",
        "seed",
        "engine",
        "fill_model_version",
        "data_root",
        "data_symbol",
        "data_window",
        "data_manifest_window",
        "data_manifest_hash",
        "project_version",
        "git",
        "packages",
        "python",
    )
    out = {k: study.user_attrs.get(k) for k in keys if study.user_attrs.get(k) is not None}
    out.update(meta.get("provenance") or {})
    return out


def _study_space(study: optuna.Study) -> SpecSpace:
    """The space as the study searched it: its stored YAML with the objectives the run used (``search run
    --objectives`` overrides the YAML's, and the space hash was taken after that)."""
    space = load_study_space(study)
    stored = study.user_attrs.get("objectives")
    if stored:
        space = space.model_copy(update={"objectives": [Objective(**o) for o in stored]})
    return space


def reproduce_trial(
    ref: TrialRef, *, engine: str | None = None, echo: Callable[[str], None] = print
) -> ReproduceResult:
    """Check what changed, re-run trial ``ref`` and compare it with its records (module doc).

    Raises :class:`~search.study_access.StudySetupError` when there is nothing to reproduce (no such study or
    trial, no record, a study not made by ``search run``); every other outcome is a stored verdict.
    """
    began = time.perf_counter()
    study, trial, root, url = ref.open(why=": only finished trials have records to reproduce")
    folder = records_folder(study, root)
    path = record_path(folder, ref.trial)
    if not path.exists():
        raise StudySetupError(
            f"trial {ref.trial} of {ref.study!r} has no record at {path}; pass --storage and the studies "
            "root (FARM_STUDIES) that `search run` used"
        )
    meta = read_meta(path)
    record = read_record(path)
    stored = _stored_provenance(study, meta)
    stored_engine = str(stored.get("engine") or "fast")
    engine = engine or stored_engine
    if engine not in ENGINES:
        raise StudySetupError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    result = ReproduceResult(
        study.study_name, ref.trial, engine, stored_engine, exact=engine == stored_engine == "fast"
    )
    now = code_provenance()
    result.now = dict(now)
    if engine != stored_engine:
        result.findings.append(
            Finding(
                "engine",
                False,
                f"re-run with the {engine} engine, the study ran {stored_engine}: compared within the parity "
                "tolerances",
            )
        )
    space = _study_space(study)

    # what changed: the space, the params and the spec they build
    if stored.get("space_hash") and space.content_hash() != stored["space_hash"]:
        result.findings.append(
            Finding(
                "space",
                True,
                f"the stored space validates to content hash {space.content_hash()[:12]} with this code, the study "
                f"searched {str(stored['space_hash'])[:12]}: the space model (spec_space/) changed how it reads it",
            )
        )
    space_path = study.user_attrs.get("space_path")
    if (
        space_path
        and Path(space_path).is_file()
        and Path(space_path).read_text() != study.user_attrs.get("space_text")
    ):
        result.findings.append(
            Finding("space", False, f"{space_path} changed since the study ran; its stored copy is used")
        )
    params = dict(meta.get("params") or {})
    if params != dict(trial.params):
        result.findings.append(
            Finding(
                "params", True, f"the record's params {params} differ from the study's {dict(trial.params)}"
            )
        )
    try:
        spec = space.build(params)
    except Exception as exc:  # noqa: BLE001 - any build failure means the code no longer accepts these params
        result.findings.append(Finding("spec", True, f"this code cannot build the trial's spec: {exc}"))
        return _finish(study, result, folder, began)
    stored_spec = (meta.get("provenance") or {}).get("spec")
    if stored_spec is None:
        result.findings.append(
            Finding(
                "spec",
                False,
                "the record holds no spec (made before records carried one); built from the space",
            )
        )
    elif spec.model_dump(mode="json") != stored_spec:
        paths = _json_paths(stored_spec, spec.model_dump(mode="json"))
        result.findings.append(
            Finding(
                "spec",
                True,
                f"this code builds a different spec from the same params (spec sha256 {spec_hash(spec)[:12]}, "
                f"stored {str((meta.get('provenance') or {}).get('spec_hash', ''))[:12]}); fields: {_names(paths)}",
            )
        )

    # what changed: the data and the code
    store = store_for(study, ref.data_root)
    data, now_hash = _data_findings(study, store, stored, space)
    result.findings += data
    result.now["data_manifest_hash"] = now_hash
    result.now["data_root"] = mask_url(store.root)
    result.findings += _code_findings(stored, now, study.user_attrs)
    for finding in result.findings:
        echo(f"{'cause' if finding.blocking else 'warning'}: {finding.cause}: {finding.message}")

    # the re-run and the comparison
    folds = _folds(study)
    try:
        market = load_market(store, spec, space.data.start, space.data.end)
        outcome = evaluate_params(space, params, market, folds, engine)
    except Exception as exc:  # noqa: BLE001 - missing data, an engine error: recorded as the verdict
        result.error = f"{type(exc).__name__}: {exc}"
        return _finish(study, result, folder, began)
    result.ran = True
    result.windows, result.objective_differences = compare_outcome(
        record, list(trial.values or []), outcome, folds, exact=result.exact
    )
    for w in result.windows:
        state = "same" if w.ok else f"DIFFERENT: {w.describe()}"
        echo(f"fold {w.fold} {w.window:<13} {w.start}..{w.end}: {state} ({_n(w.trades[1])} trades)")
    return _finish(study, result, folder, began)


def _finish(study: optuna.Study, result: ReproduceResult, folder: Path, began: float) -> ReproduceResult:
    result.seconds = time.perf_counter() - began
    _store_verdict(study, result, folder)
    return result


def _store_verdict(study: optuna.Study, result: ReproduceResult, records_dir: Path) -> None:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = records_dir / "reproduce"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"trial_{result.trial}.json"
    detail = {**result.to_dict(), "reproduced_utc": stamp}
    path.write_text(json.dumps(json_safe(detail), indent=2, default=str))
    result.path = path
    entry = {
        "trial": result.trial,
        "passed": result.passed,
        "summary": result.summary,
        "engine": result.engine,
        "exact": result.exact,
        "causes": sorted({f.cause for f in result.causes}),
        "warnings": sorted({f.cause for f in result.warnings}),
        "reproduced_utc": stamp,
        "data_manifest_hash": result.now.get("data_manifest_hash"),
        "fill_model_version": FILL_MODEL_VERSION,
        "file": str(path),
    }
    upsert_verdict(study, REPRODUCE_ATTR, entry, folder=str(out))
