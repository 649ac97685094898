"""Signal-follower spaces: search how to trade the Kirkland signals, one space per instrument.

The signals themselves are fixed (they are the trader's input); what is searched is how to act on
them: how long a signal stays valid (fill window), how close price must come to the signal's entry
(tolerance), which take-profit level to aim for, how to scale the stop, whether to move to break
even, the maximum hold and the risk per trade. The events are written into the space (spec.signals)
so the space is self-contained and its content hash covers the signals it was searched on.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from seeds.kirkland import KirklandSignals, load_kirkland_signals
from spec_space.space import SpecSpace, check_space

MIN_SIGNALS = 5


def _instrument(data_ticker: str, kind: str) -> dict[str, str] | None:
    if kind == "forex" or data_ticker.startswith("C:"):
        return {"type": "forex", "symbol": data_ticker.removeprefix("C:")}
    if kind in ("future", "index_cfd"):
        return {"type": "future", "symbol": data_ticker}
    return None  # stocks and the like: not a signal-follower instrument here


def _events(rows: pd.DataFrame, n_targets: int) -> list[dict[str, Any]]:
    events = []
    for row in rows.itertuples(index=False):
        targets = [float(getattr(row, f"tp{k}")) for k in range(1, n_targets + 1)]
        events.append({
            "time": pd.Timestamp(row.datetime).isoformat(),
            "side": "buy" if row.side == "long" else "sell",
            "entry": float(row.entry),
            "stop": float(row.stop),
            "targets": targets,
        })
    return events


def signal_space(name: str, rows: pd.DataFrame, instrument: dict[str, str], source: str) -> dict[str, Any]:
    tp_columns = sorted(c for c in rows.columns if c.startswith("tp") and c[2:].isdigit())
    # only levels every signal has can be chosen; rows are sorted by time
    n_targets = max((k for k in range(1, len(tp_columns) + 1) if rows[f"tp{k}"].notna().all()), default=0)
    first = pd.Timestamp(rows["datetime"].min()).date()
    last = pd.Timestamp(rows["datetime"].max()).date()
    params: dict[str, Any] = {
        "fill_window": {"int": [15, 480], "step": 15, "default": 120},
        "tolerance": {"float": [0.0002, 0.005], "log": True, "default": 0.001},
        "stop_scale": {"float": [0.5, 1.5], "step": 0.1, "default": 1.0},
        "use_break_even": {"choice": [False, True], "default": False},
        "be_trigger": {"float": [0.001, 0.01], "log": True, "default": 0.003, "when": {"use_break_even": True}},
        "max_hold": {"int": [60, 2880], "step": 60, "default": 1440},
        "risk": {"float": [0.002, 0.02], "log": True, "default": 0.005},
    }
    exits: dict[str, Any] = {
        "stop_loss": {"signal_stop": "$stop_scale"},
        "break_even": {"trigger_pct": "$be_trigger", "buffer_pct": 0.0},
        "max_hold_minutes": "$max_hold",
    }
    if n_targets:
        params["target"] = {"choice": list(range(1, n_targets + 1)), "default": 1}
        exits["take_profit"] = {"signal_target": "$target"}
    entry = ("external_signal('kirkland', '{side}', $fill_window) and "
             "abs(close - signal_level('kirkland', 'entry', $fill_window)) <= $tolerance * close")
    costs = {"commission_per_lot": 3.0, "slippage_bps": 0.5} if instrument["type"] == "forex" else {
        "commission_per_contract": 0.62, "slippage_ticks": 1}
    sessions = max(3, math.ceil(((last - first).days + 1) * 5 / 7))
    return {
        "name": name,
        "description": f"Follow the Kirkland signals on {instrument['symbol']} ({len(rows)} signals from {source}).",
        "data": {"start": str(first), "end": str(min(last + dt.timedelta(days=5), dt.date.today()))},
        # the last sixth of the sessions is the holdout (out-of-sample, unseen by the search)
        "walk_forward": {"scheme": "anchored", "train_days": max(10, sessions // 3), "test_days": max(5, sessions // 6),
                         "embargo_days": 0, "folds": 2, "holdout_days": max(5, sessions // 6)},
        "objectives": [{"metric": "sharpe", "direction": "maximize"},
                       {"metric": "max_drawdown", "direction": "minimize"}],
        "constraints": [{"metric": "n_trades", "op": ">=", "value": 2}],
        "params": params,
        "spec": {
            "name": name,
            "instrument": instrument,
            "timeframe": "1min",
            "direction": "both",
            "entry": {"long": entry.format(side="buy"), "short": entry.format(side="sell")},
            "exits": exits,
            "sizing": {"mode": "risk", "risk_pct": "$risk"},
            "costs": costs,
            "signals": {"kirkland": _events(rows, n_targets)},
        },
        "provenance": {"source": source, "provider": "kirkland-parser", "signals": len(rows),
                       "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    }


def build_signal_spaces(parsed: KirklandSignals, source: str) -> list[tuple[SpecSpace, list[str]]]:
    frame = parsed.frame.sort_values("datetime")
    built: list[tuple[SpecSpace, list[str]]] = []
    for data_ticker, rows in frame.groupby("data_ticker", sort=True):
        notes: list[str] = []
        instrument = _instrument(str(data_ticker), str(rows["kind"].iloc[0]))
        if instrument is None:
            continue
        if len(rows) < MIN_SIGNALS:
            notes.append(f"only {len(rows)} signals for {data_ticker} (< {MIN_SIGNALS}): no space written")
            built.append((None, notes))  # type: ignore[arg-type]
            continue
        name = "kirkland_" + instrument["symbol"].lower()
        raw = signal_space(name, rows, instrument, source)
        space = SpecSpace.model_validate(raw)
        check_space(space)
        built.append((space, notes))
    return built


def write_signal_spaces(csv_path: str | Path, out_dir: str | Path) -> tuple[list[str], list[Path]]:
    """Parse the CSV (bad rows reported by line) and write one space per instrument: report lines, paths."""
    parsed = load_kirkland_signals(csv_path)
    lines = parsed.report().splitlines()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for space, notes in build_signal_spaces(parsed, str(csv_path)):
        lines += notes
        if space is None:
            continue
        data = space.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        path = out / f"{space.name}.yaml"
        path.write_text(f"# Written by `search seed --signals {csv_path}`: a signal-follower space.\n"
                        + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
        lines.append(f"{csv_path}: {len(space.spec['signals']['kirkland'])} signals -> {path}")
        written.append(path)
    return lines, written
