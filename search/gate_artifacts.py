"""What ``search gate`` writes into ``<study folder>/gates/``: gates.csv, gates.json, pbo.json and one
folder per candidate (trades, daily returns, metrics, DSR, bootstrap), swapped in whole."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import polars as pl

from data.safe import finite_float, json_safe
from evaluator.gates import GateConfig, Verdict
from evaluator.overfitting import DSRResult
from evaluator.results import position_pnls
from search.gate_stats import PERIODS_PER_YEAR, StudyStats
from search.study_access import records_folder

if TYPE_CHECKING:
    from search.gate import CandidateResult

__all__ = [
    "GATE_FORMAT",
    "gate_attr",
    "gates_folder",
    "gates_json",
    "pbo_json",
    "replace_folder",
    "result_status",
    "verdict_dict",
    "write_candidate",
    "gates_csv",
    "write_json",
]

GATE_FORMAT = 1


def gates_folder(study: optuna.Study, studies_root: Path) -> Path:
    """``<study folder>/gates``: next to the trial records (the study's ``records_dir`` when it exists)."""
    return records_folder(study, studies_root) / "gates"


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        "passed": verdict.passed,
        "rejected_at_stage": verdict.rejected_at_stage,
        "summary": verdict.summary(),
        "results": [asdict(r) for r in verdict.results],
    }


def dsr_dict(result: DSRResult, periods: int = PERIODS_PER_YEAR) -> dict[str, Any]:
    data = asdict(result)
    data["sr_annualised"] = result.sr * math.sqrt(periods)
    data["sr0_annualised"] = result.sr0 * math.sqrt(periods)
    return data


def result_status(result: Any) -> str:
    if not result.evaluated:
        return "not evaluated"
    if result.value is None and not result.passed:
        return "missing"
    return "pass" if result.passed else "fail"


def gates_csv(candidates: Sequence[CandidateResult], objective: str) -> pl.DataFrame:
    """One row per candidate: verdict, reasons, and per gate its value (blank unless evaluated) and status."""
    rows: list[dict[str, Any]] = []
    for c in candidates:
        row: dict[str, Any] = {
            "rank": c.rank,
            "trial": c.number,
            f"is_{objective}": finite_float(c.objectives.get(objective)),  # the study's objective: an IS mean
            "passed": c.verdict.passed,
            "rejected_at_stage": c.verdict.rejected_at_stage or "",
            "reasons": "; ".join(r.reason for r in c.verdict.failures),
        }
        for r in c.verdict.results:
            # a KPI of a rejected candidate stays blank: it was never read
            row[r.name] = finite_float(r.value) if r.evaluated else None
            row[f"{r.name}_status"] = result_status(r)
        for extra in ("dsr_raw", "dsr_spread", "max_drawdown_p95", "stability_ratio"):
            row.setdefault(extra, finite_float(c.values[extra]))
        row["rerun_matches_record"] = c.rerun.get("matches_record")
        row["params"] = json.dumps(json_safe(c.params), sort_keys=True)
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def write_candidate(folder: Path, c: CandidateResult, spec_json: str) -> None:
    folder.mkdir(parents=True)
    c.trades.write_csv(folder / "holdout_trades.csv")
    c.validation_trades.write_csv(folder / "validation_trades.csv")
    c.daily.write_csv(folder / "daily.csv")
    write_json(
        folder / "metrics.json",
        {
            "rank": c.rank,
            "trial": c.number,
            "params": c.params,
            "objectives": c.objectives,
            "holdout": c.holdout_metrics,
            "holdout_sessions": int(c.daily.filter(pl.col("window") == "holdout").height),
            "validation": c.val_metrics,
            "validation_sessions": int(c.daily.filter(pl.col("window") == "validation").height),
            "gate_values": c.values,
            "stability": {k: v for k, v in asdict(c.stability).items() if k != "neighbour_values"}
            | {"neighbour_values": c.stability.neighbour_values},
            "rerun": c.rerun,
            "verdict": verdict_dict(c.verdict),
            "spec": json.loads(spec_json),
        },
    )
    write_json(folder / "dsr.json", {"effective": dsr_dict(c.dsr), "raw": dsr_dict(c.dsr_raw)})
    b = c.bootstrap
    write_json(
        folder / "bootstrap.json",
        {
            "n_trades": int(position_pnls(c.trades).size),  # positions, as the KPIs count them
            "n_samples": int(b.max_drawdowns.size),
            "observed": b.observed,
            "mean": b.mean,
            "p50": b.p50,
            "p95": b.p95,
            "p99": b.p99,
            "max_drawdowns": np.round(b.max_drawdowns, 8),
        },
    )


def replace_folder(target: Path, build: Callable[[Path], None]) -> None:
    """Build the folder next to ``target`` and swap it in, so a failed run leaves the last good one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


def gates_json(
    study: optuna.Study,
    config: GateConfig,
    sources: list[str],
    stats: StudyStats,
    results: Sequence[CandidateResult],
    objectives: Sequence[str],
    direction: str,
    stamp: str,
    notes: Sequence[str],
) -> dict[str, Any]:
    return {
        "format": GATE_FORMAT,
        "study": study.study_name,
        "created_utc": stamp,
        "objective": objectives[0],
        "direction": direction,
        "config": config.model_dump(),
        "sources": sources,
        "study_stats": {
            "n_trials_raw": stats.n_trials_raw,
            "n_trials_eff": stats.n_trials_eff,
            "sr_variance": stats.sr_variance,
            "sr_variance_null": stats.sr_variance_null,
            "periods_per_year": PERIODS_PER_YEAR,
            "trial_sharpes": [{"trial": n, "sr": v} for n, v in sorted(stats.trial_sharpes.items())],
            "val_dropped": {str(k): v for k, v in stats.val_dropped.items()},
            "pbo": None if stats.pbo is None else stats.pbo.pbo,
        },
        "candidates": [
            {
                "rank": c.rank,
                "trial": c.number,
                "folder": f"candidate_{c.rank}",
                "params": c.params,
                "objectives": c.objectives,
                "values": c.values,
                **verdict_dict(c.verdict),
            }
            for c in results
        ],
        "notes": list(notes),
    }


def pbo_json(stats: StudyStats) -> dict[str, Any]:
    """``pbo.json``: how the CSCV matrix was built and its result."""
    pbo = stats.pbo
    return {
        **stats.pbo_info,
        "pbo": None if pbo is None else pbo.pbo,
        "n_combinations": None if pbo is None else pbo.n_combinations,
        "degradation_slope": None if pbo is None else pbo.degradation_slope,
        "prob_oos_loss": None if pbo is None else pbo.prob_oos_loss,
        "logits": [] if pbo is None else pbo.logits,
        "is_performance": [] if pbo is None else pbo.is_performance,
        "oos_performance": [] if pbo is None else pbo.oos_performance,
    }


def gate_attr(
    results: Sequence[CandidateResult],
    config: GateConfig,
    sources: list[str],
    stats: StudyStats,
    folder: Path,
    stamp: str,
) -> dict[str, Any]:
    """The study attribute ``gate``: the verdicts in the form ``search promote`` reads."""
    return {
        "created_utc": stamp,
        "folder": str(folder),
        "sources": sources,
        "config": [f"{g.stage}: {g.name} {g.op} {g.threshold:g}" for g in config.gates],
        "pbo": None if stats.pbo is None else stats.pbo.pbo,
        "n_trials_raw": stats.n_trials_raw,
        "n_trials_eff": stats.n_trials_eff,
        "candidates": [
            {
                "rank": c.rank,
                "trial": c.number,
                "passed": c.verdict.passed,
                "rejected_at_stage": c.verdict.rejected_at_stage,
                "summary": c.verdict.summary(),
                "max_drawdown_p95": c.values["max_drawdown_p95"],
                "results": [
                    {
                        "name": r.name,
                        "value": r.value,
                        "passed": r.passed,
                        "evaluated": r.evaluated,
                        "reason": r.reason,
                    }
                    for r in c.verdict.results
                ],
            }
            for c in results
        ],
    }
