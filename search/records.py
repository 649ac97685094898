"""Per-trial record files: each trial's per-fold metrics and daily returns, under ``<studies>/<study>/trials/``.

One ``.npz`` file per trial (``trial_000042.npz``), written atomically by the driver before the trial is
told to the study, so a COMPLETE trial always has its record (unless an OS crash or power cut drops the
latest writes: see :func:`write_record`). Contents (no pickles; ``np.load`` reads it
with ``allow_pickle=False``):

===========  ==============  =====================================================================
array        dtype           meaning
===========  ==============  =====================================================================
``fold``     int16           fold index of each row
``val``      bool            False = in-sample (training) row, True = validation (fold test) row
``date``     datetime64[D]   session date
``ret``      float64         simple daily return of that window's backtest (fraction)
``meta``     str (0-d)       JSON: format, trial number, params, feasible, per-fold IS and validation metrics,
                             and ``provenance`` (the trial's concrete spec JSON and hash, seed, engine,
                             fill model, data manifest hash, code; see :mod:`search.provenance`)
===========  ==============  =====================================================================

Walk-forward optimisation, PBO and DSR are computed from these files with no extra backtest.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from evaluator.trial import TrialOutcome
from evaluator.wfo import FoldRecord, TrialRecord

__all__ = [
    "RECORD_FORMAT",
    "load_records",
    "read_meta",
    "read_record",
    "record_path",
    "safe_name",
    "study_dir",
    "write_record",
]

RECORD_FORMAT = 2  # 2: fold test windows are "validation" (key "val"); a holdout follows the folds


def safe_name(name: str) -> str:
    """A study name usable as one folder name (anything outside ``[A-Za-z0-9_.-]`` becomes ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".")
    return cleaned or "_"


def study_dir(studies_root: str | Path, study_name: str) -> Path:
    return Path(studies_root) / safe_name(study_name)


def record_path(folder: str | Path, number: int) -> Path:
    """The record file of trial ``number`` in a study folder."""
    return Path(folder) / "trials" / f"trial_{number:06d}.npz"


def _finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    # JSON has no NaN; null reads back as nan
    return {k: (float(v) if math.isfinite(v) else None) for k, v in metrics.items()}


def _from_json(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: (math.nan if v is None else float(v)) for k, v in metrics.items()}


def write_record(
    folder: str | Path, number: int, outcome: TrialOutcome, *, provenance: dict[str, Any] | None = None
) -> Path:
    """Write trial ``number``'s record atomically (temp file + rename) and return its path.

    ``provenance`` (JSON-ready) goes into the meta as is: the record alone then says which spec, data
    and code produced it.
    """
    path = record_path(folder, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    folds, val, dates, rets = [], [], [], []
    for f in outcome.folds:
        for is_val, d, r in ((False, f.is_dates, f.is_returns), (True, f.val_dates, f.val_returns)):
            folds.append(np.full(len(d), f.fold, dtype=np.int16))
            val.append(np.full(len(d), is_val, dtype=np.bool_))
            dates.append(np.asarray(d, dtype="datetime64[D]"))
            rets.append(np.asarray(r, dtype=np.float64))
    meta = {
        "format": RECORD_FORMAT,
        "number": number,
        "params": dict(outcome.values),
        "feasible": outcome.feasible,
        "engine": outcome.engine,
        "folds": [
            {
                "fold": f.fold,
                "is": _finite_or_none(dict(f.is_metrics)),
                "val": _finite_or_none(dict(f.val_metrics)),
            }
            for f in outcome.folds
        ],
    }
    if provenance is not None:
        meta["provenance"] = provenance
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            fold=np.concatenate(folds) if folds else np.empty(0, np.int16),
            val=np.concatenate(val) if val else np.empty(0, np.bool_),
            date=np.concatenate(dates) if dates else np.empty(0, "datetime64[D]"),
            ret=np.concatenate(rets) if rets else np.empty(0, np.float64),
            meta=np.array(json.dumps(meta)),
        )
    # no fsync (it was 1.5 ms of the driver's time per trial): the rename makes the file appear whole or
    # not at all, which survives the process being killed; like SQLite's synchronous=NORMAL, only an OS
    # crash or power cut can lose the latest records (load_records then lists them as missing)
    os.replace(tmp, path)
    return path


def _checked_meta(path: Path, text: str) -> dict[str, Any]:
    meta = json.loads(text)
    if meta.get("format") != RECORD_FORMAT:
        raise ValueError(
            f"{path}: record format {meta.get('format')!r}, this code reads format {RECORD_FORMAT}; "
            "re-run the study with this version to rewrite its records"
        )
    return meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """The JSON meta of one record file (params, per-fold metrics and, when recorded, ``provenance``)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        return _checked_meta(path, str(data["meta"]))


def read_record(path: str | Path) -> TrialRecord:
    """Read one record file back into a :class:`~evaluator.wfo.TrialRecord`."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        meta = _checked_meta(path, str(data["meta"]))
        fold, val, date, ret = data["fold"], data["val"], data["date"], data["ret"]
    records = []
    for entry in meta["folds"]:
        k = entry["fold"]
        is_rows = (fold == k) & ~val
        val_rows = (fold == k) & val
        records.append(
            FoldRecord(
                k,
                _from_json(entry["is"]),
                _from_json(entry["val"]),
                date[is_rows],
                ret[is_rows],
                date[val_rows],
                ret[val_rows],
            )
        )
    return TrialRecord(int(meta["number"]), meta["params"], records, bool(meta["feasible"]))


def load_records(folder: str | Path, numbers: Iterable[int]) -> tuple[list[TrialRecord], list[int]]:
    """Records of the given trials; also the numbers whose file is missing (listed, not fatal)."""
    found, missing = [], []
    for number in numbers:
        path = record_path(folder, number)
        if path.exists():
            found.append(read_record(path))
        else:
            missing.append(number)
    return found, missing
