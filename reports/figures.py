"""Plotly figures drawn from stored results (reports compute nothing new: they draw what is recorded)."""

from __future__ import annotations

from collections.abc import Sequence

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
