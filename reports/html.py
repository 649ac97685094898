"""The study report: one self-contained HTML page that opens offline.

The page is assembled from a :class:`ReportData` (what the study storage and the trial records hold,
gathered by ``search report``) and the files ``search gate`` wrote (:func:`read_gate_artifacts`). It
computes nothing new: figures draw stored values; sections whose inputs do not exist yet (no gate run,
a single-objective study) say so and name the command that produces them.

plotly.js is embedded once, in the page head; every figure is a ``<div>`` plus a small script that
draws into it, so the page loads nothing from the network.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline
import polars as pl

from reports import figures

__all__ = [
    "SECTIONS",
    "CandidateSeries",
    "GateArtifacts",
    "GateCandidate",
    "ReportData",
    "TrialRow",
    "read_gate_artifacts",
    "render_report",
    "write_report",
]

#: (id, heading) of every section, in page order; tests and links rely on the ids.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Study summary"),
    ("history", "Optimisation history"),
    ("pareto", "Pareto front"),
    ("importance", "Parameter importances"),
    ("parallel", "Parallel coordinates"),
    ("walk-forward", "Walk-forward equity and drawdown"),
    ("monthly", "Monthly returns"),
    ("trades", "Trade distribution"),
    ("overfitting", "Overfitting checks: PBO, DSR, bootstrap drawdown"),
    ("gates", "Gates"),
)

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class TrialRow:
    """A COMPLETE trial: number, objective values (study order), parameters, feasibility."""

    number: int
    values: tuple[float, ...]
    params: dict[str, Any]
    feasible: bool = True


@dataclass
class CandidateSeries:
    """A candidate's daily returns per window: IS and validation per fold, and the holdout once gated (the frame
    :func:`search.return_series.fold_daily_frame` makes)."""

    rank: int
    trial: int
    params: dict[str, Any]
    objective: float | None
    daily: pl.DataFrame = field(repr=False)  # fold, window, date, return, equity, stitched_equity
    initial_cash: float = 100_000.0

    @property
    def label(self) -> str:
        return f"#{self.rank} (trial {self.trial})"


@dataclass
class GateCandidate:
    rank: int
    trial: int
    folder: Path
    metrics: dict[str, Any]
    dsr: dict[str, Any]
    bootstrap: dict[str, Any]
    trades: pl.DataFrame = field(repr=False)
    daily: pl.DataFrame = field(repr=False)

    @property
    def label(self) -> str:
        return f"#{self.rank} (trial {self.trial})"


@dataclass
class GateArtifacts:
    """What ``search gate`` wrote into ``<study folder>/gates``."""

    folder: Path
    summary: dict[str, Any]  # gates.json
    pbo: dict[str, Any]  # pbo.json
    candidates: list[GateCandidate]


@dataclass
class ReportData:
    study_name: str
    objectives: list[tuple[str, str]]  # (metric, direction)
    summary: list[tuple[str, str]]  # label, value: the provenance table
    trials: list[TrialRow]
    n_failed: int
    candidates: list[CandidateSeries]
    gate_command: str
    generated_utc: str
    space_text: str | None = None
    pareto: list[int] | None = None  # trial numbers on the front; None for a single objective
    importances: dict[str, dict[str, float]] | None = None
    importance_note: str | None = None
    candidates_source: str = "records"  # "gate": the gated candidates; "records": top trials, no gate run
    gates: GateArtifacts | None = None
    data_origin: str | None = None  # "synthetic data, planted edge zrce:0.5", or real flat files
    holdout: dict[str, Any] | None = None  # start, end, days


# ------------------------------------------------------------------------------------------ reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: missing; re-run `search gate` to write the gate artifacts again"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); re-run `search gate`") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level; re-run `search gate`")
    return data


def read_gate_artifacts(folder: str | Path) -> GateArtifacts | None:
    """The gate artifacts under ``folder`` (``<study folder>/gates``), or None if ``search gate`` never ran."""
    folder = Path(folder)
    if not (folder / "gates.json").exists():
        return None
    summary = _read_json(folder / "gates.json")
    pbo = _read_json(folder / "pbo.json")
    candidates = []
    for entry in summary.get("candidates", []):
        sub = folder / str(entry["folder"])
        candidates.append(
            GateCandidate(
                rank=int(entry["rank"]),
                trial=int(entry["trial"]),
                folder=sub,
                metrics=_read_json(sub / "metrics.json"),
                dsr=_read_json(sub / "dsr.json"),
                bootstrap=_read_json(sub / "bootstrap.json"),
                trades=pl.read_csv(sub / "holdout_trades.csv")
                if (sub / "holdout_trades.csv").stat().st_size
                else pl.DataFrame(),
                daily=pl.read_csv(sub / "daily.csv", try_parse_dates=True),
            )
        )
    return GateArtifacts(folder, summary, pbo, candidates)


# ------------------------------------------------------------------------------------------ helpers


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        v = float(value)
        if not math.isfinite(v):
            return "nan"
        if v.is_integer() and abs(v) < 1e12:
            return f"{int(v)}"
        return f"{v:.{digits}g}"
    return _e(value)


def _pct(value: object) -> str:
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):.2%}"


def _figure(fig: go.Figure, name: str) -> str:
    return pio.to_html(
        fig, include_plotlyjs=False, full_html=False, config=_PLOT_CONFIG, div_id=f"fig-{name}"
    )


def _missing(text: str) -> str:
    return f'<p class="missing">{text}</p>'


def _gate_hint(data: ReportData) -> str:
    return _missing(
        f"<code>search gate</code> has not been run for this study yet. Run <code>{_e(data.gate_command)}</code>, "
        f"then <code>search report --study {_e(data.study_name)}</code> again."
    )


def _fold_series(daily: pl.DataFrame) -> list[dict[str, Any]]:
    folds = []
    for fold in sorted(set(daily.filter(pl.col("window") != "holdout").get_column("fold").to_list())):
        part = daily.filter(pl.col("fold") == fold)
        is_rows = part.filter(pl.col("window") == "is")
        val_rows = part.filter(pl.col("window") == "validation")
        folds.append(
            {
                "fold": fold,
                "is_dates": is_rows.get_column("date").to_list(),
                "is_equity": is_rows.get_column("equity").to_list(),
                "val_dates": val_rows.get_column("date").to_list(),
                "val_equity": val_rows.get_column("equity").to_list(),
            }
        )
    return folds


def _window(daily: pl.DataFrame, window: str) -> pl.DataFrame:
    return daily.filter(pl.col("window") == window).sort("fold", "date")


# ------------------------------------------------------------------------------------------ sections


def _summary_section(data: ReportData) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in data.summary)
    parts = [f'<table class="kv">{rows}</table>']
    if data.space_text:
        parts.append(
            f"<details><summary>space YAML the study searched</summary><pre>{_e(data.space_text)}</pre></details>"
        )
    return "".join(parts)


def _history_section(data: ReportData) -> str:
    if not data.trials:
        return _missing("The study has no COMPLETE trial yet.")
    fig = figures.optimisation_history_figure(
        [t.number for t in data.trials],
        [t.values for t in data.trials],
        data.objectives,
        feasible=[t.feasible for t in data.trials],
    )
    note = f"<p>{len(data.trials)} COMPLETE trials, {data.n_failed} failed (not drawn).</p>"
    return note + _figure(fig, "history")


def _pareto_section(data: ReportData) -> str:
    if len(data.objectives) < 2:
        return _missing(
            "Single-objective study: there is no Pareto front (the history above shows the best trial)."
        )
    if not data.trials:
        return _missing("The study has no COMPLETE trial yet.")
    fig = figures.pareto_front_figure(
        [t.number for t in data.trials], [t.values for t in data.trials], data.objectives, data.pareto or []
    )
    extra = ""
    if len(data.objectives) > 2:
        extra = f"<p>Showing the first two of {len(data.objectives)} objectives.</p>"
    return extra + _figure(fig, "pareto")


def _importance_section(data: ReportData) -> str:
    if not data.importances:
        return _missing(_e(data.importance_note or "Parameter importances are not available for this study."))
    note = f"<p>{_e(data.importance_note)}</p>" if data.importance_note else ""
    return note + _figure(figures.importance_figure(data.importances), "importance")


def _parallel_section(data: ReportData) -> str:
    if not data.trials or not any(t.params for t in data.trials):
        return _missing("No COMPLETE trial with parameters yet.")
    metric = data.objectives[0][0]
    fig = figures.parallel_coordinates_figure(
        [t.params for t in data.trials], [t.values[0] for t in data.trials], objective=metric
    )
    return _figure(fig, "parallel")


def _source_note(data: ReportData) -> str:
    if data.candidates_source == "gate":
        return (
            "<p>The candidates gated by <code>search gate</code>, from their <code>daily.csv</code>. Validation "
            "windows (the folds' test windows) were seen by the search; only the holdout is out-of-sample.</p>"
        )
    return (
        "<p>The best COMPLETE trials by the first objective, from their trial records "
        f"(<code>{_e(data.gate_command)}</code> has not been run yet).</p>"
    )


def _walk_forward_section(data: ReportData) -> str:
    if not data.candidates:
        return _missing("No candidate with a trial record to draw.")
    parts = [_source_note(data)]
    for i, c in enumerate(data.candidates):
        validation = _window(c.daily, "validation")
        holdout = _window(c.daily, "holdout")
        title = f"{c.label}: in-sample, validation and holdout equity; params {_params_text(c.params)}"
        fig = figures.walk_forward_figure(
            _fold_series(c.daily),
            validation.get_column("date").to_list(),
            validation.get_column("stitched_equity").to_list(),
            title=title,
            initial_cash=c.initial_cash,
            colour=figures.candidate_colour(i),
            holdout_dates=holdout.get_column("date").to_list(),
            holdout_equity=holdout.get_column("stitched_equity").to_list(),
        )
        parts.append(_figure(fig, f"walk-forward-{c.rank}"))
    return "".join(parts)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={_num(v, 4) if isinstance(v, int | float) else v}" for k, v in sorted(params.items())
    )


def _monthly_section(data: ReportData) -> str:
    if not data.candidates:
        return _missing("No candidate with a trial record to draw.")
    # the holdout once gated (out-of-sample); before that only the validation windows exist
    window = "holdout" if data.candidates_source == "gate" else "validation"
    series = []
    for c in data.candidates:
        rows = _window(c.daily, window)
        series.append((c.label, rows.get_column("date").to_list(), rows.get_column("return").to_list()))
    title = (
        "Monthly holdout (out-of-sample) returns"
        if window == "holdout"
        else "Monthly validation returns (stitched walk-forward; seen by the search)"
    )
    return _figure(figures.monthly_returns_figure(series, title=title), "monthly")


def _position_pnls(trades: pl.DataFrame) -> np.ndarray:
    """One net PnL per position: holdout_trades.csv has a row per exit fill, grouped by (fold, trade_id)
    (the rule of evaluator.results.position_pnls; a file written before trade ids has a row per trade)."""
    if trades.height == 0:
        return np.empty(0)
    keys = [c for c in ("fold", "trade_id") if c in trades.columns]
    if "trade_id" not in keys:
        return trades.get_column("pnl").to_numpy()
    return trades.group_by(keys, maintain_order=True).agg(pl.col("pnl").sum()).get_column("pnl").to_numpy()


def _trades_section(data: ReportData) -> str:
    gates = data.gates
    if gates is None:
        return _missing(
            "Holdout (out-of-sample) trades are written by the gate run (the records hold daily returns only)."
        ) + _gate_hint(data)
    series = [(c.label, _position_pnls(c.trades).tolist()) for c in gates.candidates]
    rows = []
    for c in gates.candidates:
        pnl = _position_pnls(c.trades)
        verdict = c.metrics.get("verdict", {})
        if verdict.get("rejected_at_stage") == "overfitting":
            # the gates never read a rejected candidate's KPIs; neither does the report
            kpis = '<td class="ne" colspan="3">not evaluated: rejected by overfitting checks</td>'
        else:
            held = c.metrics.get("holdout", {})
            kpis = (
                f"<td>{_pct(held.get('win_rate'))}</td><td>{_num(held.get('avg_trade'))}</td>"
                f"<td>{_num(held.get('profit_factor'))}</td>"
            )
        worst = _num(float(pnl.min()) if pnl.size else None)
        best = _num(float(pnl.max()) if pnl.size else None)
        rows.append(
            f"<tr><td>{_e(c.label)}</td><td>{pnl.size}</td><td>{worst}</td><td>{best}</td>{kpis}</tr>"
        )
    table = (
        "<table><tr><th>candidate</th><th>holdout trades</th><th>worst</th><th>best</th><th>win rate</th>"
        f"<th>avg trade</th><th>profit factor</th></tr>{''.join(rows)}</table>"
    )
    return _figure(figures.trade_pnl_figure(series), "trades") + table


def _overfitting_section(data: ReportData) -> str:
    gates = data.gates
    if gates is None:
        return _gate_hint(data)
    parts = []
    pbo = gates.pbo
    if pbo.get("pbo") is not None and pbo.get("logits"):
        parts.append(
            f"<p>PBO = <b>{_num(pbo['pbo'], 3)}</b> by CSCV over {_num(pbo.get('n_sessions'))} sessions x "
            f"{_num(pbo.get('n_trials'))} trials, S = {_num(pbo.get('n_blocks'))} blocks "
            f"({_num(pbo.get('n_combinations'))} splits); probability the IS-best trial loses OOS: "
            f"{_num(pbo.get('prob_oos_loss'), 3)}; degradation slope {_num(pbo.get('degradation_slope'), 3)}.</p>"
        )
        parts.append(
            _figure(
                figures.pbo_logit_figure(
                    pbo["logits"],
                    pbo=float(pbo["pbo"]),
                    n_blocks=int(pbo["n_blocks"]),
                    n_trials=int(pbo["n_trials"]),
                ),
                "pbo",
            )
        )
        parts.append(
            _figure(
                figures.pbo_degradation_figure(pbo["is_performance"], pbo["oos_performance"]),
                "pbo-degradation",
            )
        )
    else:
        parts.append(_missing(f"PBO was not computed: {_e(pbo.get('note') or 'unknown reason')}."))
    if pbo.get("dropped"):
        dropped = ", ".join(f"#{_e(k)} ({_e(v)})" for k, v in pbo["dropped"].items())
        parts.append(f"<p>Trials dropped from the PBO matrix: {dropped}.</p>")
    if pbo.get("note") and pbo.get("pbo") is not None:
        parts.append(f"<p>{_e(pbo['note'])}.</p>")

    stats = gates.summary.get("study_stats", {})
    periods = float(stats.get("periods_per_year", 252))
    trial_sr = [
        float(s["sr"]) * math.sqrt(periods) for s in stats.get("trial_sharpes", []) if s.get("sr") is not None
    ]
    if gates.candidates:
        first = gates.candidates[0].dsr
        threshold = next(
            (g["threshold"] for g in gates.summary["config"]["gates"] if g["metric"] == "dsr"), None
        )
        parts.append(
            _figure(
                figures.dsr_figure(
                    trial_sr,
                    [(c.label, _finite(c.dsr["effective"].get("sr_annualised"))) for c in gates.candidates],
                    sr0=_finite(first["effective"].get("sr0_annualised")),
                    sr0_raw=_finite(first["raw"].get("sr0_annualised")),
                    n_eff=_finite(stats.get("n_trials_eff")),
                    n_raw=int(stats.get("n_trials_raw", 0)),
                ),
                "dsr",
            )
        )
        parts.append(
            _figure(
                figures.dsr_candidates_figure(
                    [c.label for c in gates.candidates],
                    [c.dsr["effective"].get("psr") for c in gates.candidates],
                    [c.dsr["effective"].get("dsr") for c in gates.candidates],
                    [c.dsr["raw"].get("dsr") for c in gates.candidates],
                    threshold=threshold,
                ),
                "dsr-candidates",
            )
        )
        parts.append(_candidate_stats_table(gates))
        parts.append(
            _figure(
                figures.bootstrap_drawdown_figure(
                    [
                        (
                            c.label,
                            c.bootstrap.get("max_drawdowns", []),
                            _finite(c.bootstrap.get("observed")),
                            _finite(c.bootstrap.get("p95")),
                        )
                        for c in gates.candidates
                    ]
                ),
                "bootstrap",
            )
        )
    return "".join(parts)


def _finite(value: object) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(float(value)) else float("nan")


def _candidate_stats_table(gates: GateArtifacts) -> str:
    head = (
        "<tr><th>candidate</th><th>holdout sessions</th><th>Sharpe (ann.)</th><th>SR0 (ann., N_eff)</th>"
        "<th>DSR</th><th>DSR (raw N)</th><th>PSR</th><th>skew</th><th>kurtosis</th><th>WFE</th>"
        "<th>stability (neighbours)</th><th>max DD observed</th><th>max DD p95</th></tr>"
    )
    rows = []
    for c in gates.candidates:
        eff, raw = c.dsr["effective"], c.dsr["raw"]
        values = c.metrics.get("gate_values", {})
        stab = c.metrics.get("stability", {})
        rows.append(
            f"<tr><td>{_e(c.label)}</td><td>{_num(eff.get('n_obs'))}</td><td>{_num(eff.get('sr_annualised'), 3)}</td>"
            f"<td>{_num(eff.get('sr0_annualised'), 3)}</td><td>{_num(eff.get('dsr'), 3)}</td>"
            f"<td>{_num(raw.get('dsr'), 3)}</td><td>{_num(eff.get('psr'), 3)}</td><td>{_num(eff.get('skew'), 3)}</td>"
            f"<td>{_num(eff.get('kurtosis'), 3)}</td><td>{_num(values.get('wfe'), 3)}</td>"
            f"<td>{_num(stab.get('stability_ratio'), 3)} ({_num(stab.get('n_neighbours'))})</td>"
            f"<td>{_pct(c.bootstrap.get('observed'))}</td><td>{_pct(c.bootstrap.get('p95'))}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _gates_section(data: ReportData) -> str:
    gates = data.gates
    if gates is None:
        return _gate_hint(data)
    summary = gates.summary
    config = summary["config"]["gates"]
    head = "".join(
        f"<th>{_e(g['name'])}<br><small>{_e(g['op'])} {_num(g['threshold'])}</small></th>" for g in config
    )
    objective = summary.get("objective", "objective")
    rows = []
    for c in summary.get("candidates", []):
        cells = []
        for r in c["results"]:
            if not r["evaluated"]:
                cells.append(f'<td class="ne" title="{_e(r["reason"])}">not evaluated</td>')
            else:
                cls = "pass" if r["passed"] else "fail"
                shown = _num(r["value"], 3)
                if r["value"] is None:  # JSON keeps nan as null
                    shown = "nan" if "nan" in r["reason"] else "missing"
                cells.append(f'<td class="{cls}" title="{_e(r["reason"])}">{shown}</td>')
        verdict = (
            '<td class="pass"><b>passed</b></td>'
            if c["passed"]
            else f'<td class="fail"><b>rejected</b> ({_e(c["rejected_at_stage"])})</td>'
        )
        reasons = "; ".join(r["reason"] for r in c["results"] if r["evaluated"] and not r["passed"])
        rows.append(
            f"<tr><td>#{c['rank']}</td><td>{c['trial']}</td><td>{_num(c['objectives'].get(objective), 4)}</td>"
            f"{''.join(cells)}{verdict}<td>{_e(reasons) or '–'}</td></tr>"
        )
    stages = ", ".join(f"{_e(g['name'])} ({_e(g['stage'])})" for g in config)
    parts = [
        f"<p>Gate run {_e(summary.get('created_utc', ''))}; configuration from {_e(' + '.join(summary.get('sources', [])))}: "
        f"{stages}. Overfitting gates run first; a candidate failing one is rejected and its KPI gates are "
        "<i>not evaluated</i> (their values are not read).</p>",
        f'<table class="gates"><tr><th>#</th><th>trial</th><th>IS {_e(objective)}</th>{head}<th>verdict</th>'
        f"<th>reasons</th></tr>{''.join(rows)}</table>",
    ]
    notes = summary.get("notes") or []
    if notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append(f"<p>Artifacts: <code>{_e(gates.folder)}</code> (gates.csv, per-candidate folders).</p>")
    return "".join(parts)


_BUILDERS = {
    "summary": _summary_section,
    "history": _history_section,
    "pareto": _pareto_section,
    "importance": _importance_section,
    "parallel": _parallel_section,
    "walk-forward": _walk_forward_section,
    "monthly": _monthly_section,
    "trades": _trades_section,
    "overfitting": _overfitting_section,
    "gates": _gates_section,
}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px 0;font-size:1.6em} header p{margin:0;color:#cfd8e3}
header code{background:#34495e;color:#fff}
div.decision{margin-top:10px;padding:8px 12px;background:#2c3e50;border-left:4px solid #f0b400}
div.decision p,div.decision li{color:#fff;margin:3px 0} div.decision ul{margin:4px 0 4px 18px;padding:0}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;z-index:10}
nav a{margin-right:14px;color:#1f5f9f;text-decoration:none;font-size:.92em}
main{max-width:1280px;margin:0 auto;padding:8px 32px 48px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 20px;margin:18px 0}
h2{font-size:1.25em;margin:6px 0 10px}
table{border-collapse:collapse;margin:10px 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f2f4f7} td:first-child,th:first-child{text-align:left}
table.gates td:nth-last-child(-n+2),table.gates th:nth-last-child(-n+2){text-align:left}
table.kv td{text-align:left;font-family:ui-monospace,Menlo,monospace;font-size:.92em}
td.pass{background:#e6f4ea;color:#1e6b34} td.fail{background:#fdecea;color:#a12622} td.ne{color:#888;font-style:italic}
p.missing{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:.85em}
code{background:#f1f1f1;padding:1px 4px;border-radius:3px}
"""


def render_report(data: ReportData) -> str:
    """The whole page as one string (plotly.js inlined once)."""
    nav = "".join(f'<a href="#{sid}">{_e(title.split(":")[0])}</a>' for sid, title in SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{_e(title)}</h2>{_BUILDERS[sid](data)}</section>' for sid, title in SECTIONS
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Study {_e(data.study_name)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{_CSS}</style>"
        "<script type='text/javascript'>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>"
        "</head><body>"
        f"<header><h1>Study {_e(data.study_name)}</h1><p>generated {_e(data.generated_utc)} by "
        "<code>search report</code>; every number is read from the study storage, the trial records and the "
        f"gate artifacts</p>{_decision(data)}</header>"
        f"<nav>{nav}</nav><main>{sections}</main></body></html>\n"
    )


def _decision(data: ReportData) -> str:
    """The decision first: which candidates pass on the holdout, why the others fail, what to run next."""
    origin = f"<p class='origin'><b>Data:</b> {_e(data.data_origin)}</p>" if data.data_origin else ""
    holdout = data.holdout or {}
    held = (
        f" on the holdout {_e(holdout.get('start'))} .. {_e(holdout.get('end'))} ({_e(holdout.get('days'))} "
        "sessions the search never saw)"
        if holdout
        else ""
    )
    if data.gates is None:
        return (
            f"<div class='decision'>{origin}<p><b>Decision: none yet.</b> No candidate has been gated. Next: "
            f"<code>{_e(data.gate_command)}</code></p></div>"
        )
    entries = data.gates.summary.get("candidates", [])
    passed = [c for c in entries if c.get("passed")]
    items = "".join(
        f"<li>{'PASS' if c.get('passed') else 'reject'}: trial #{_e(c.get('trial'))} (rank {_e(c.get('rank'))}): "
        f"{_e(c.get('summary'))}</li>"
        for c in entries
    )
    if passed:
        first = passed[0]["trial"]
        verdict = f"{len(passed)} of {len(entries)} candidate(s) passed every gate{held}."
        nxt = (
            f"<code>search confirm --study {_e(data.study_name)} --trial {_e(first)}</code>, then "
            f"<code>search reproduce --study {_e(data.study_name)} --trial {_e(first)}</code>, then "
            f"<code>search promote --study {_e(data.study_name)} --dry-run</code>"
        )
    else:
        verdict = f"No candidate passed: all {len(entries)} rejected{held}."
        nxt = "widen the space or its data, or accept that there is no edge here; nothing is promoted"
    return (
        f"<div class='decision'>{origin}<p><b>Decision:</b> {verdict}</p><ul>{items}</ul>"
        f"<p><b>Next:</b> {nxt}</p></div>"
    )


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render and write the page (the folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(data), encoding="utf-8")
    tmp.replace(path)
    return path
