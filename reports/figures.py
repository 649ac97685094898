"""Plotly figures drawn from stored results (reports compute nothing new: they draw what is recorded)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def equity_drawdown_figure(dates: Sequence[object], equity: Sequence[float], *, title: str,
                           initial_cash: float | None = None) -> go.Figure:
    """Equity on top, drawdown from the running peak below, sharing the time axis."""
    values = np.asarray(equity, dtype=float)
    base = np.concatenate(([initial_cash], values)) if initial_cash is not None else values
    peak = np.maximum.accumulate(base)[-len(values):] if len(values) else values
    drawdown = values / peak - 1.0 if len(values) else values
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=list(dates), y=values, name="equity", line={"width": 1.6}), row=1, col=1)
    fig.add_trace(
        go.Scatter(x=list(dates), y=drawdown * 100, name="drawdown %", fill="tozeroy", line={"width": 1, "color": "#c0392b"}),
        row=2, col=1,
    )
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    fig.update_layout(title=title, template="plotly_white", height=600, showlegend=False, margin={"t": 60})
    return fig


# ------------------------------------------------------------------------------------------------
# Study report figures. Every function takes plain values (lists, numpy arrays) read from the study
# storage, the trial records or the gate artifacts; none of them computes a statistic of its own.
# ------------------------------------------------------------------------------------------------

#: One colour per candidate, the same in every figure of a report.
PALETTE: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                            "#7f7f7f", "#bcbd22", "#17becf")
_LAYOUT = {"template": "plotly_white", "margin": {"t": 60, "l": 60, "r": 20, "b": 50}}


def candidate_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def optimisation_history_figure(numbers: Sequence[int], values: Sequence[Sequence[float]],
                                objectives: Sequence[tuple[str, str]], *,
                                feasible: Sequence[bool] | None = None) -> go.Figure:
    """Objective value of each COMPLETE trial by trial number, one row per objective; the first objective
    also shows the best feasible value so far (the line an optimiser is judged by)."""
    n_obj = len(objectives)
    fig = make_subplots(rows=n_obj, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[f"{m} ({d})" for m, d in objectives])
    x = np.asarray(numbers, dtype=int)
    ok = np.ones(len(x), dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    for row, (metric, direction) in enumerate(objectives, start=1):
        y = np.asarray([v[row - 1] for v in values], dtype=float)
        fig.add_trace(go.Scatter(x=x[ok], y=y[ok], mode="markers", name=f"{metric} (feasible)",
                                 marker={"size": 6, "color": "#1f77b4"}), row=row, col=1)
        if (~ok).any():
            fig.add_trace(go.Scatter(x=x[~ok], y=y[~ok], mode="markers", name=f"{metric} (infeasible)",
                                     marker={"size": 6, "color": "#bbbbbb", "symbol": "x"}), row=row, col=1)
        if row == 1 and ok.any():
            order = np.argsort(x)
            ys = np.where(ok[order], y[order], np.nan)
            best = np.fmax.accumulate(ys) if direction == "maximize" else np.fmin.accumulate(ys)
            fig.add_trace(go.Scatter(x=x[order], y=best, mode="lines", name=f"best {metric} so far",
                                     line={"color": "#d62728", "width": 2, "shape": "hv"}), row=row, col=1)
        fig.update_yaxes(title_text=metric, row=row, col=1)
    fig.update_xaxes(title_text="trial", row=n_obj, col=1)
    fig.update_layout(title="Optimisation history (in-sample objectives)", height=260 + 220 * n_obj, **_LAYOUT)
    return fig


def pareto_front_figure(numbers: Sequence[int], values: Sequence[Sequence[float]],
                        objectives: Sequence[tuple[str, str]], front: Sequence[int]) -> go.Figure:
    """The first two objectives of every COMPLETE trial, the Pareto-optimal ones highlighted."""
    x = np.asarray([v[0] for v in values], dtype=float)
    y = np.asarray([v[1] for v in values], dtype=float)
    num = np.asarray(numbers, dtype=int)
    on = np.isin(num, np.asarray(list(front), dtype=int))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x[~on], y=y[~on], mode="markers", name="trials",
                             marker={"color": "#9ecae1", "size": 7}, text=[f"trial {n}" for n in num[~on]]))
    order = np.argsort(x[on])
    fig.add_trace(go.Scatter(x=x[on][order], y=y[on][order], mode="markers+lines", name="Pareto front",
                             marker={"color": "#d62728", "size": 9}, line={"dash": "dot", "width": 1},
                             text=[f"trial {n}" for n in num[on][order]]))
    (mx, dx), (my, dy) = objectives[0], objectives[1]
    fig.update_layout(title="Pareto front (in-sample objectives)", xaxis_title=f"{mx} ({dx})",
                      yaxis_title=f"{my} ({dy})", height=480, **_LAYOUT)
    return fig


def importance_figure(importances: dict[str, dict[str, float]]) -> go.Figure:
    """Horizontal bars: each parameter's importance for each objective (normalised to sum to 1)."""
    params = sorted({p for imp in importances.values() for p in imp},
                    key=lambda p: -max(imp.get(p, 0.0) for imp in importances.values()))
    fig = go.Figure()
    for i, (objective, imp) in enumerate(importances.items()):
        fig.add_trace(go.Bar(y=params[::-1], x=[imp.get(p, 0.0) for p in params[::-1]], orientation="h",
                             name=objective, marker={"color": candidate_colour(i)}))
    fig.update_layout(title="Parameter importances (fANOVA, seed 0)", xaxis_title="importance",
                      barmode="group", height=180 + 40 * max(1, len(params)) * max(1, len(importances)),
                      **_LAYOUT)
    return fig


def parallel_coordinates_figure(params: Sequence[dict[str, object]], values: Sequence[float], *,
                                objective: str) -> go.Figure:
    """One line per COMPLETE trial across its parameters, coloured by the first objective.

    Categorical parameters are drawn on an axis of their choices (in first-seen order)."""
    names = sorted({k for p in params for k in p})
    dims = []
    for name in names:
        column = [p.get(name) for p in params]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in column if v is not None)
        if numeric:
            dims.append({"label": name, "values": [np.nan if v is None else float(v) for v in column]})
        else:
            choices = list(dict.fromkeys(str(v) for v in column))
            codes = [choices.index(str(v)) for v in column]
            dims.append({"label": name, "values": codes, "tickvals": list(range(len(choices))),
                         "ticktext": choices})
    vals = np.asarray(values, dtype=float)
    dims.append({"label": objective, "values": vals})
    fig = go.Figure(go.Parcoords(line={"color": vals, "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": {"text": objective}}}, dimensions=dims))
    fig.update_layout(title=f"Parameters of every trial, coloured by in-sample {objective}", height=460,
                      **{**_LAYOUT, "margin": {"t": 90, "l": 60, "r": 60, "b": 40}})
    return fig


def walk_forward_figure(folds: Sequence[dict[str, Any]], stitched_dates: Sequence[object],
                        stitched_equity: Sequence[float], *, title: str, initial_cash: float,
                        colour: str = "#ff7f0e", holdout_dates: Sequence[object] = (),
                        holdout_equity: Sequence[float] = ()) -> go.Figure:
    """Top: each fold's in-sample equity (thin) and validation equity (bold), every window from
    ``initial_cash``, and the holdout (black). Middle: the validation windows chained (the walk-forward
    equity, which the search saw) and the holdout (out-of-sample, unseen). Bottom: their drawdowns.

    ``folds``: dicts with ``fold``, ``is_dates``, ``is_equity``, ``val_dates``, ``val_equity``."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.45, 0.35, 0.2], vertical_spacing=0.05,
                        subplot_titles=["per fold: in-sample (thin) and validation (bold) equity; holdout (black)",
                                        "stitched validation equity, then the holdout (out-of-sample)",
                                        "drawdown"])
    for i, f in enumerate(folds):
        fig.add_trace(go.Scatter(x=list(f["is_dates"]), y=list(f["is_equity"]), mode="lines",
                                 name="in-sample (per fold)", legendgroup="is", showlegend=i == 0,
                                 line={"width": 1, "color": "#7f9fbf"}), row=1, col=1)
        fig.add_trace(go.Scatter(x=list(f["val_dates"]), y=list(f["val_equity"]), mode="lines",
                                 name="validation (per fold, seen by the search)", legendgroup="validation",
                                 showlegend=i == 0, line={"width": 2.5, "color": colour}), row=1, col=1)
    for name, dates, equity, style in (
        ("stitched validation", list(stitched_dates), stitched_equity, {"width": 2, "color": colour}),
        ("holdout (out-of-sample)", list(holdout_dates), holdout_equity, {"width": 2.5, "color": "#111111"}),
    ):
        eq = np.asarray(equity, dtype=float)
        if not eq.size:
            continue
        peak = np.maximum.accumulate(np.concatenate(([initial_cash], eq)))[1:]
        if name.startswith("holdout"):
            fig.add_trace(go.Scatter(x=dates, y=eq, mode="lines", name=name, showlegend=False, line=style),
                          row=1, col=1)
        fig.add_trace(go.Scatter(x=dates, y=eq, mode="lines", name=name, line=style), row=2, col=1)
        fig.add_trace(go.Scatter(x=dates, y=(eq / peak - 1.0) * 100, mode="lines", name=f"drawdown % ({name})",
                                 fill="tozeroy", line={"width": 1, "color": style["color"]}), row=3, col=1)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="equity", row=2, col=1)
    fig.update_yaxes(title_text="drawdown %", row=3, col=1)
    fig.update_layout(title=title, height=720, legend={"orientation": "h", "y": -0.08}, **_LAYOUT)
    return fig


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_returns_figure(series: Sequence[tuple[str, Sequence[object], Sequence[float]]],
                           *, title: str = "Monthly returns") -> go.Figure:
    """Year x month heat map of compounded returns (%), one panel per (label, dates, returns); months
    without a session stay blank."""
    panels = [s for s in series if len(s[1])]
    fig = make_subplots(rows=max(1, len(panels)), cols=1, subplot_titles=[s[0] for s in panels] or [""],
                        vertical_spacing=0.12)
    for row, (_label, dates, returns) in enumerate(panels, start=1):
        days = np.asarray(dates, dtype="datetime64[D]")
        months = days.astype("datetime64[M]")
        years = sorted({int(str(m)[:4]) for m in months})
        grid = np.full((len(years), 12), np.nan)
        r = np.asarray(returns, dtype=float)
        for month in np.unique(months):
            year, mon = int(str(month)[:4]), int(str(month)[5:7])
            grid[years.index(year), mon - 1] = (np.prod(1.0 + r[months == month]) - 1.0) * 100
        text = [["" if np.isnan(v) else f"{v:+.2f}%" for v in line] for line in grid]
        limit = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
        fig.add_trace(go.Heatmap(z=grid, x=list(_MONTHS), y=[str(y) for y in years], text=text,
                                 texttemplate="%{text}", colorscale="RdYlGn", zmid=0.0, zmin=-limit, zmax=limit,
                                 showscale=row == 1, colorbar={"title": {"text": "%"}},
                                 hovertemplate="%{y} %{x}: %{text}<extra></extra>"), row=row, col=1)
        fig.update_yaxes(type="category", row=row, col=1)
    fig.update_layout(title=title,
                      height=160 + 170 * max(1, len(panels)), **_LAYOUT)
    return fig


def trade_pnl_figure(series: Sequence[tuple[str, Sequence[float]]]) -> go.Figure:
    """Histogram of the net PnL of each holdout (out-of-sample) trade, one overlaid histogram per candidate."""
    fig = go.Figure()
    for i, (label, pnls) in enumerate(series):
        # one bin group: overlaid histograms share their bins, so the bars line up
        fig.add_trace(go.Histogram(x=np.asarray(pnls, dtype=float), name=label, opacity=0.6, nbinsx=40,
                                   bingroup=1, marker={"color": candidate_colour(i)}))
    fig.add_vline(x=0.0, line={"color": "#444", "dash": "dash", "width": 1})
    fig.update_layout(title="Holdout (out-of-sample) trade PnL (net of costs)", xaxis_title="PnL per trade",
                      yaxis_title="trades", barmode="overlay", height=420, **_LAYOUT)
    return fig


def pbo_logit_figure(logits: Sequence[float], *, pbo: float, n_blocks: int, n_trials: int) -> go.Figure:
    """Histogram of the CSCV logits of the in-sample best trial's out-of-sample rank; PBO is the mass <= 0."""
    x = np.asarray(logits, dtype=float)
    fig = go.Figure(go.Histogram(x=x, nbinsx=50, marker={"color": "#6a51a3"}, name="logit"))
    fig.add_vline(x=0.0, line={"color": "#d62728", "width": 2},
                  annotation_text=f"PBO = {pbo:.3f}", annotation_position="top left")
    fig.update_layout(title=f"PBO: logits of {x.size:,} CSCV splits (S = {n_blocks}, {n_trials} trials)",
                      xaxis_title="logit of the OOS rank of the IS-best trial (<= 0: below the OOS median)",
                      yaxis_title="splits", height=400, **_LAYOUT)
    return fig


def pbo_degradation_figure(is_perf: Sequence[float], oos_perf: Sequence[float], *, max_points: int = 2000) -> go.Figure:
    """The IS-best trial's in-sample vs out-of-sample Sharpe per CSCV split (every k-th split when there are
    more than ``max_points``, for the browser's sake)."""
    x = np.asarray(is_perf, dtype=float)
    y = np.asarray(oos_perf, dtype=float)
    step = max(1, int(np.ceil(x.size / max_points)))
    fig = go.Figure(go.Scatter(x=x[::step], y=y[::step], mode="markers", marker={"size": 4, "opacity": 0.5,
                                                                                   "color": "#6a51a3"},
                               name="split"))
    fig.add_hline(y=0.0, line={"color": "#444", "dash": "dash", "width": 1})
    shown = f"every {step}th of {x.size:,} splits" if step > 1 else f"{x.size:,} splits"
    fig.update_layout(title=f"Performance degradation: IS-best trial, IS vs OOS per-period Sharpe ({shown})",
                      xaxis_title="in-sample Sharpe (per period)", yaxis_title="out-of-sample Sharpe (per period)",
                      height=400, **_LAYOUT)
    return fig


def dsr_figure(trial_sharpes: Sequence[float], candidates: Sequence[tuple[str, float]], *, sr0: float,
               sr0_raw: float, n_eff: float, n_raw: int) -> go.Figure:
    """Histogram of every trial's annualised validation Sharpe, the deflated benchmarks SR0 (effective and raw N)
    and each candidate's holdout Sharpe."""
    fig = go.Figure(go.Histogram(x=np.asarray(trial_sharpes, dtype=float), nbinsx=40, name="trials",
                                 marker={"color": "#9ecae1"}))
    fig.add_vline(x=sr0, line={"color": "#d62728", "width": 2},
                  annotation_text=f"SR0 (N_eff = {n_eff:g})", annotation_position="top right")
    fig.add_vline(x=sr0_raw, line={"color": "#d62728", "width": 1, "dash": "dot"},
                  annotation_text=f"SR0 (N = {n_raw})", annotation_position="bottom right")
    for i, (label, sr) in enumerate(candidates):
        fig.add_vline(x=sr, line={"color": candidate_colour(i), "width": 2, "dash": "dash"})
        fig.add_trace(go.Scatter(x=[sr], y=[0], mode="markers", name=label,
                                 marker={"color": candidate_colour(i), "size": 11, "symbol": "triangle-up"}))
    fig.update_layout(title="Deflated Sharpe: trials' validation Sharpe and the selection-bias benchmark",
                      xaxis_title="annualised validation Sharpe", yaxis_title="trials", height=420, **_LAYOUT)
    return fig


def dsr_candidates_figure(labels: Sequence[str], psr: Sequence[float], dsr: Sequence[float],
                          dsr_raw: Sequence[float], *, threshold: float | None) -> go.Figure:
    """PSR, DSR (effective N) and DSR (raw N) of each candidate, against the gate threshold."""
    fig = go.Figure()
    for name, vals, colour in (("PSR (SR > 0)", psr, "#9ecae1"), ("DSR (effective N)", dsr, "#3182bd"),
                               ("DSR (raw N)", dsr_raw, "#08519c")):
        fig.add_trace(go.Bar(x=list(labels), y=[np.nan if v is None else v for v in vals], name=name,
                             marker={"color": colour}))
    if threshold is not None:
        fig.add_hline(y=threshold, line={"color": "#d62728", "dash": "dash"},
                      annotation_text=f"gate {threshold:g}", annotation_position="top left")
    fig.update_layout(title="Probability that the true Sharpe beats 0 (PSR) and the deflated benchmark (DSR)",
                      yaxis={"range": [0, 1.05], "title": "probability"}, barmode="group", height=400, **_LAYOUT)
    return fig


def bootstrap_drawdown_figure(series: Sequence[tuple[str, Sequence[float], float, float]]) -> go.Figure:
    """Bootstrap distribution of the max drawdown (%) per candidate: (label, samples, observed, p95)."""
    fig = go.Figure()
    for i, (label, samples, observed, p95) in enumerate(series):
        colour = candidate_colour(i)
        fig.add_trace(go.Histogram(x=np.asarray(samples, dtype=float) * 100, opacity=0.55, nbinsx=50, bingroup=1,
                                   name=f"{label}: observed {observed:.2%}, p95 {p95:.2%}", marker={"color": colour}))
        fig.add_vline(x=p95 * 100, line={"color": colour, "width": 2, "dash": "dash"})
        fig.add_vline(x=observed * 100, line={"color": colour, "width": 1, "dash": "dot"})
    fig.update_layout(title="Max drawdown when the holdout trades come in another order (bootstrap; dashed: p95, "
                            "dotted: observed)",
                      xaxis_title="max drawdown %", yaxis_title="samples", barmode="overlay", height=420,
                      **_LAYOUT)
    return fig
