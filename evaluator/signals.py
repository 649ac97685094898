# ruff: noqa: ANN001  -- numba infers the types of the compiled indicator kernels
"""Evaluate signal expressions over a bar series, vectorised and causal.

Every function here returns, for bar ``i``, a value computed from bars ``0..i`` only; the engines
act on a signal at bar ``i`` no earlier than bar ``i + 1``'s open, so nothing looks ahead.
Results are cached per (expression node, series) so trials sharing indicator settings share work.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

from spec_space.expressions import parse_expression

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True)
class ExternalEvents:
    """One named list of external signal events (spec.signals), sorted by time."""

    ts: np.ndarray  # int64 ns UTC, when each event became known
    side: np.ndarray  # int8: +1 buy, -1 sell
    entry: np.ndarray
    stop: np.ndarray
    targets: np.ndarray  # float64 [events, levels], NaN where an event has fewer levels
    digest: str  # content hash: cached signals of another list with the same name must not be reused


@dataclass
class BarSeries:
    """The signal series: one row per bar, exchange-time fields precomputed once."""

    ts: np.ndarray  # int64 ns UTC, bar start
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    day: np.ndarray  # int32 session index (0, 1, ...)
    minute: np.ndarray  # int32 minutes since midnight, exchange time, bar start
    # minutes since the midnight that starts the bar's trading day: negative for a futures or forex
    # session's evening bars (their day is the next date); equal to `minute` for stocks
    session_minute: np.ndarray
    weekday: np.ndarray  # int8, Monday = 0
    session_dates: list[dt.date]
    external: dict[str, ExternalEvents] = field(default_factory=dict)  # external signal lists by name
    cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ts)


def evaluate(expression: str, bars: BarSeries) -> np.ndarray:
    """Evaluate an expression to a float or bool array (NaN where an indicator has no value yet)."""
    key = "expr:" + expression
    if key not in bars.cache:
        bars.cache[key] = _eval(parse_expression(expression).body, bars)
    return bars.cache[key]


def evaluate_bool(expression: str | None, bars: BarSeries) -> np.ndarray:
    if expression is None:
        return np.zeros(len(bars), dtype=np.bool_)
    value = evaluate(expression, bars)
    if value.dtype != np.bool_:
        raise ValueError(
            f"expression {expression!r} gives numbers, not true/false; compare it with something"
        )
    return value


def _eval(node: ast.AST, bars: BarSeries) -> np.ndarray:
    key = ast.dump(node)
    cached = bars.cache.get(key)
    if cached is not None:
        return cached
    result = _eval_uncached(node, bars)
    if isinstance(result, np.ndarray):
        bars.cache[key] = result
    return result


def _num(node: ast.AST, bars: BarSeries) -> np.ndarray:
    value = _eval(node, bars)
    return value.astype(np.float64) if isinstance(value, np.ndarray) else np.full(len(bars), float(value))


def _eval_uncached(node: ast.AST, bars: BarSeries) -> np.ndarray:
    n = len(bars)
    if isinstance(node, ast.Constant):
        return np.full(n, float(node.value)) if not isinstance(node.value, str) else node.value  # type: ignore[return-value]
    if isinstance(node, ast.Name):
        return _field(node.id, bars)
    if isinstance(node, ast.BoolOp):
        parts = [_eval(v, bars).astype(np.bool_) for v in node.values]
        out = parts[0].copy()
        for part in parts[1:]:
            out = (out & part) if isinstance(node.op, ast.And) else (out | part)
        return out
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, bars)
        if isinstance(node.op, ast.Not):
            return ~operand.astype(np.bool_)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _num(node.left, bars), _num(node.right, bars)
        ops: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
            ast.Add: np.add,
            ast.Sub: np.subtract,
            ast.Mult: np.multiply,
            ast.Div: lambda a, b: np.divide(a, b, out=np.full(n, np.nan), where=b != 0),
        }
        return ops[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        result = np.ones(n, dtype=np.bool_)
        left = _num(node.left, bars)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _num(comparator, bars)
            with np.errstate(invalid="ignore"):
                cmp = {
                    ast.Gt: np.greater,
                    ast.GtE: np.greater_equal,
                    ast.Lt: np.less,
                    ast.LtE: np.less_equal,
                    ast.Eq: np.equal,
                    ast.NotEq: np.not_equal,
                }[type(op)](left, right)
            result &= cmp  # NaN compares false: no signal while an indicator warms up
            left = right
        return result
    if isinstance(node, ast.Call):
        return _call(node, bars)
    raise ValueError(f"cannot evaluate {ast.dump(node)}")


def _field(name: str, bars: BarSeries) -> np.ndarray:
    if name == "hl2":
        return (bars.high + bars.low) / 2
    if name == "hlc3":
        return (bars.high + bars.low + bars.close) / 3
    return getattr(bars, name).astype(np.float64)


def _int_arg(node: ast.AST, name: str, minimum: int = 1) -> int:
    if not isinstance(node, ast.Constant) or isinstance(node.value, str):
        raise ValueError(f"{name}: the period must be a number")
    value = int(round(float(node.value)))
    if value < minimum:
        raise ValueError(f"{name}: the period must be at least {minimum}, got {node.value}")
    return value


def _event_window(bar_ts: np.ndarray, event_ts: np.ndarray, window_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """For each bar: the index of the latest event known at the bar's start (-1 if none) and whether that
    event's window is open. An event at 10:15:30 is known from the bar starting 10:16 on; window 0 opens
    on that first bar only. A later event of the list closes the earlier one's window."""
    index = np.searchsorted(event_ts, bar_ts, side="right") - 1
    known = index >= 0
    if window_minutes == 0:
        first = np.zeros(len(bar_ts), dtype=np.bool_)
        change = np.ones(len(bar_ts), dtype=np.bool_)
        change[1:] = index[1:] != index[:-1]
        first[known & change] = True
        return index, first
    age = bar_ts - event_ts[np.maximum(index, 0)] if len(event_ts) else np.zeros(len(bar_ts), np.int64)
    return index, known & (age <= window_minutes * 60_000_000_000)


def _float_arg(node: ast.AST, name: str) -> float:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_float_arg(node.operand, name)
    if not isinstance(node, ast.Constant) or isinstance(node.value, str):
        raise ValueError(f"{name}: expected a number")
    return float(node.value)


#: Levels that do not exist before some bar of each session and keep their value after it forms.
_SESSION_LEVELS = frozenset({"opening_range_high", "opening_range_low"})


def _reads_session_level(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and getattr(n.func, "id", None) in _SESSION_LEVELS for n in ast.walk(node)
    )


def _previous(x: np.ndarray, bars: BarSeries, session_level: bool) -> np.ndarray:
    """``x`` one bar back (NaN on the first bar). For a session level, where it had no value yet on the
    previous bar of the same session (it was still being drawn), its value now stands in: the level is
    where it is, and the previous close sat inside the range that made it, so a first close beyond it on
    the first bar after it forms is a cross (else that bar could never cross)."""
    prev = np.full(len(x), np.nan)
    prev[1:] = x[:-1]
    if session_level and len(x) > 1:
        forming = np.zeros(len(x), dtype=np.bool_)
        forming[1:] = np.isnan(x[:-1]) & ~np.isnan(x[1:]) & (bars.day[1:] == bars.day[:-1])
        prev[forming] = x[forming]
    return prev


def _minutes(text: str) -> int:
    t = dt.time.fromisoformat(text)
    return t.hour * 60 + t.minute


def _call(node: ast.Call, bars: BarSeries) -> np.ndarray:
    name = node.func.id  # type: ignore[attr-defined]
    args = node.args
    if name == "sma":
        return _sma(_num(args[0], bars), _int_arg(args[1], name))
    if name == "ema":
        return _ema(_num(args[0], bars), _int_arg(args[1], name))
    if name == "rsi":
        return _rsi(_num(args[0], bars), _int_arg(args[1], name))
    if name == "atr":
        return atr(bars.high, bars.low, bars.close, _int_arg(args[0], name))
    if name == "vwap":
        return _vwap(bars.high, bars.low, bars.close, bars.volume.astype(np.float64), bars.day)
    if name in ("bb_upper", "bb_lower"):
        src, period, k = _num(args[0], bars), _int_arg(args[1], name), _float_arg(args[2], name)
        mid, std = _sma(src, period), _rolling_std(src, period)
        return mid + k * std if name == "bb_upper" else mid - k * std
    if name in ("highest", "lowest"):
        return _rolling_extreme(_num(args[0], bars), _int_arg(args[1], name), name == "highest")
    if name == "prev":
        src, shift = _num(args[0], bars), _int_arg(args[1], name)
        out = np.full(len(src), np.nan)
        out[shift:] = src[:-shift]
        return out
    if name == "volume_ratio":
        vol = bars.volume.astype(np.float64)
        avg = _sma(vol, _int_arg(args[0], name))
        prior = np.full(len(vol), np.nan)
        prior[1:] = avg[:-1]
        return np.divide(vol, prior, out=np.full(len(vol), np.nan), where=prior > 0)
    if name in ("opening_range_high", "opening_range_low"):
        high, low = _opening_range(bars.high, bars.low, bars.day, bars.session_minute, _minutes(args[0].value))  # type: ignore[attr-defined]
        return high if name == "opening_range_high" else low
    if name in ("prior_day_high", "prior_day_low"):
        return _prior_day(
            bars.high if name == "prior_day_high" else bars.low, bars.day, name == "prior_day_high"
        )
    if name == "zone_breakout":
        direction = args[0].value  # type: ignore[attr-defined]
        if direction not in ("up", "down"):
            raise ValueError("zone_breakout: the first argument must be 'up' or 'down'")
        zone_high, zone_low = _opening_range(
            bars.high, bars.low, bars.day, bars.session_minute, _minutes(args[1].value)
        )  # type: ignore[attr-defined]
        full_ratio, relaxed_ratio = _float_arg(args[3], name), _float_arg(args[4], name)
        if relaxed_ratio > full_ratio + 1e-9:  # parse_expression refuses this too; kept for trees built by hand
            raise ValueError(
                f"zone_breakout: relaxed_ratio {relaxed_ratio:g} exceeds volume_ratio {full_ratio:g}; "
                "the second chance relaxes the volume check, so use relaxed_ratio <= volume_ratio"
            )
        period = _int_arg(args[5], name)
        vol = bars.volume.astype(np.float64)
        avg = _sma(vol, period)
        prior = np.full(len(vol), np.nan)
        prior[1:] = avg[:-1]
        ratio = np.divide(vol, prior, out=np.zeros(len(vol)), where=prior > 0)
        return _zone_breakout(
            bars.close,
            zone_high,
            zone_low,
            ratio,
            bars.day,
            direction == "up",
            _float_arg(args[2], name),
            full_ratio,
            relaxed_ratio,
            _float_arg(args[6], name) > 0,
            len(args) > 7 and _float_arg(args[7], name) > 0,
        )
    if name == "time_between":
        start, end = _minutes(args[0].value), _minutes(args[1].value)  # type: ignore[attr-defined]
        if start < end:
            return (bars.minute >= start) & (bars.minute < end)
        # a start after the end spans midnight ('20:00', '02:00'); it used to select nothing, silently
        return (bars.minute >= start) | (bars.minute < end)
    if name == "day_of_week":
        wanted = []
        for arg in args:
            key = arg.value.lower()[:3]  # type: ignore[attr-defined]
            if key not in _WEEKDAYS:
                raise ValueError(f"day_of_week: unknown day {arg.value!r}")  # type: ignore[attr-defined]
            wanted.append(_WEEKDAYS[key])
        return np.isin(bars.weekday, wanted)
    if name in ("crosses_above", "crosses_below"):
        a, b = _num(args[0], bars), _num(args[1], bars)
        prev_a = _previous(a, bars, _reads_session_level(args[0]))
        prev_b = _previous(b, bars, _reads_session_level(args[1]))
        with np.errstate(invalid="ignore"):
            out = (a > b) & (prev_a <= prev_b) if name == "crosses_above" else (a < b) & (prev_a >= prev_b)
        out[0] = False
        return out
    if name in ("external_signal", "signal_level"):
        events = bars.external.get(args[0].value)  # type: ignore[attr-defined]
        if events is None:
            raise ValueError(f"{name}: no signal list {args[0].value!r} in spec.signals")  # type: ignore[attr-defined]
        index, open_window = _event_window(bars.ts, events.ts, _int_arg(args[2], name, minimum=0))
        if name == "external_signal":
            side = {"buy": 1, "sell": -1}.get(args[1].value.lower())  # type: ignore[attr-defined]
            if side is None:
                raise ValueError(f"external_signal: the side must be 'buy' or 'sell', got {args[1].value!r}")  # type: ignore[attr-defined]
            return open_window & (events.side[np.maximum(index, 0)] == side)
        field_name = args[1].value.lower()  # type: ignore[attr-defined]
        if field_name in ("entry", "stop"):
            column = getattr(events, field_name)
        elif field_name.startswith("target") and field_name[6:].isdigit() and int(field_name[6:]) >= 1:
            level = int(field_name[6:]) - 1
            column = events.targets[:, level] if level < events.targets.shape[1] else np.full(len(events.ts), np.nan)
        else:
            raise ValueError(f"signal_level: unknown field {args[1].value!r}; use entry, stop, target1, target2, ...")  # type: ignore[attr-defined]
        return np.where(open_window, column[np.maximum(index, 0)] if len(column) else np.nan, np.nan)
    if name == "abs":
        return np.abs(_num(args[0], bars))
    if name in ("min", "max"):
        fn = np.fmin if name == "min" else np.fmax
        return fn(_num(args[0], bars), _num(args[1], bars))
    raise ValueError(f"unknown function {name}")


# ---------------------------------------------------------------- indicator kernels


def _sma(x: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) < period:
        return out
    csum = np.cumsum(np.insert(x, 0, 0.0))
    out[period - 1 :] = (csum[period:] - csum[:-period]) / period
    return out


def _rolling_std(x: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) < period:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, period)
    out[period - 1 :] = windows.std(axis=1)
    return out


def _rolling_extreme(x: np.ndarray, period: int, highest: bool) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) < period:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, period)
    out[period - 1 :] = windows.max(axis=1) if highest else windows.min(axis=1)
    return out


@numba.njit(cache=True)
def _ema(x: np.ndarray, period: int) -> np.ndarray:  # pragma: no cover - numba
    out = np.full(len(x), np.nan)
    alpha = 2.0 / (period + 1.0)
    value = np.nan
    count = 0
    for i in range(len(x)):
        if np.isnan(x[i]):
            continue
        count += 1
        value = x[i] if count == 1 else alpha * x[i] + (1.0 - alpha) * value
        if count >= period:
            out[i] = value
    return out


@numba.njit(cache=True)
def _rsi(x: np.ndarray, period: int) -> np.ndarray:  # pragma: no cover - numba
    out = np.full(len(x), np.nan)
    gain = 0.0
    loss = 0.0
    for i in range(1, len(x)):
        change = x[i] - x[i - 1]
        up = change if change > 0 else 0.0
        down = -change if change < 0 else 0.0
        if i <= period:
            gain += up / period
            loss += down / period
        else:
            gain = (gain * (period - 1) + up) / period
            loss = (loss * (period - 1) + down) / period
        if i >= period:
            out[i] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


@numba.njit(cache=True)
def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:  # pragma: no cover
    """Wilder's average true range (first value: mean of the first `period` true ranges)."""
    n = len(close)
    out = np.full(n, np.nan)
    value = 0.0
    for i in range(n):
        tr = high[i] - low[i]
        if i > 0:
            tr = max(tr, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        if i < period:
            value += tr / period
            if i == period - 1:
                out[i] = value
        else:
            value = (value * (period - 1) + tr) / period
            out[i] = value
    return out


@numba.njit(cache=True)
def _vwap(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, day: np.ndarray
) -> np.ndarray:  # pragma: no cover
    out = np.full(len(close), np.nan)
    pv = 0.0
    vv = 0.0
    for i in range(len(close)):
        if i == 0 or day[i] != day[i - 1]:
            pv = 0.0
            vv = 0.0
        typical = (high[i] + low[i] + close[i]) / 3.0
        pv += typical * volume[i]
        vv += volume[i]
        out[i] = pv / vv if vv > 0 else typical
    return out


@numba.njit(cache=True)
def _opening_range(
    high: np.ndarray, low: np.ndarray, day: np.ndarray, minute: np.ndarray, end_minute: int
):  # pragma: no cover
    n = len(high)
    out_high = np.full(n, np.nan)
    out_low = np.full(n, np.nan)
    zone_high = -np.inf
    zone_low = np.inf
    for i in range(n):
        if i == 0 or day[i] != day[i - 1]:
            zone_high = -np.inf
            zone_low = np.inf
        if minute[i] < end_minute:
            zone_high = max(zone_high, high[i])
            zone_low = min(zone_low, low[i])
        elif zone_high > -np.inf:
            out_high[i] = zone_high
            out_low[i] = zone_low
    return out_high, out_low


@numba.njit(cache=True)
def _prior_day(x: np.ndarray, day: np.ndarray, highest: bool) -> np.ndarray:  # pragma: no cover
    out = np.full(len(x), np.nan)
    current = np.nan
    previous = np.nan
    for i in range(len(x)):
        if i > 0 and day[i] != day[i - 1]:
            previous = current
            current = np.nan
        if np.isnan(current):
            current = x[i]
        elif highest:
            current = max(current, x[i])
        else:
            current = min(current, x[i])
        out[i] = previous
    return out


@numba.njit(cache=True)
def _zone_breakout(
    close, zone_high, zone_low, ratio, day, up, buffer, full_ratio, relaxed_ratio, second_chance, need_return
):  # pragma: no cover
    # Per session and direction, once the zone is drawn: a close beyond the zone edge by `buffer` fires
    # when its volume ratio meets `full_ratio`, whatever happened before (a strong break is a break).
    # A break that misses it is a failed break; after one, a later break needs only `relaxed_ratio`
    # (the second chance), and with `need_return` only once a close came back inside the zone since
    # the last failed break. At most one trigger per session.
    n = len(close)
    out = np.zeros(n, dtype=np.bool_)
    failed = False
    fired = False
    returned = False
    for i in range(n):
        if i == 0 or day[i] != day[i - 1]:
            failed = False
            fired = False
            returned = False
        if fired or np.isnan(zone_high[i]):
            continue
        level = zone_high[i] + buffer if up else zone_low[i] - buffer
        beyond = close[i] > level if up else close[i] < level
        if not beyond:
            inside = close[i] <= zone_high[i] if up else close[i] >= zone_low[i]
            if failed and inside:
                returned = True
            continue
        second = failed and second_chance and (returned or not need_return) and ratio[i] >= relaxed_ratio
        if ratio[i] >= full_ratio or second:
            out[i] = True
            fired = True
        else:
            failed = True
            returned = False  # the next chance needs a fresh return inside the zone
    return out
