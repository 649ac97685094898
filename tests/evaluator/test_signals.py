"""Signal expressions: every catalogue function against pandas or a hand computation, and the errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from evaluator.signals import BarSeries, evaluate, evaluate_bool
from spec_space.expressions import FUNCTIONS, ExpressionError, parse_expression
from tests.evaluator import builders as b

DAYS = ["2024-03-04", "2024-03-05", "2024-03-06"]  # Monday .. Wednesday


@pytest.fixture(scope="module")
def walk() -> tuple[BarSeries, pd.DataFrame]:
    rows = b.random_minutes(np.random.default_rng(7), DAYS)
    bars = b.market(rows).bars
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime([r[0] for r in rows]),
            "open": [r[1] for r in rows],
            "high": [r[2] for r in rows],
            "low": [r[3] for r in rows],
            "close": [r[4] for r in rows],
            "volume": [r[5] for r in rows],
        }
    )
    df["date"] = df["ts"].dt.date
    return bars, df


def same(got: np.ndarray, want: pd.Series | np.ndarray) -> None:
    np.testing.assert_allclose(got, np.asarray(want, dtype=float), rtol=1e-10, atol=1e-10, equal_nan=True)


def wilder(values: pd.Series, period: int, first: int) -> pd.Series:
    """Wilder smoothing: the mean of values[first : first + period] at first + period - 1, then
    avg = (avg * (period - 1) + value) / period, i.e. ewm(alpha=1/period) seeded with that mean."""
    seeded = values.iloc[first + period - 1 :].copy()
    seeded.iloc[0] = values.iloc[first : first + period].mean()
    out = pd.Series(np.nan, index=values.index)
    out.iloc[first + period - 1 :] = seeded.ewm(alpha=1 / period, adjust=False).mean().to_numpy()
    return out


# --------------------------------------------------------------------------- against pandas


@pytest.mark.parametrize("period", [1, 5, 20])
def test_sma(walk, period):
    bars, df = walk
    same(evaluate(f"sma(close, {period})", bars), df["close"].rolling(period).mean())


@pytest.mark.parametrize("period", [3, 12])
def test_ema(walk, period):
    bars, df = walk
    want = df["close"].ewm(span=period, adjust=False).mean()  # alpha 2/(n+1), seeded with the first close
    want.iloc[: period - 1] = np.nan  # no value until `period` bars are in
    same(evaluate(f"ema(close, {period})", bars), want)


@pytest.mark.parametrize("period", [2, 14])
def test_rsi(walk, period):
    bars, df = walk
    change = df["close"].diff()
    gain, loss = wilder(change.clip(lower=0), period, 1), wilder(-change.clip(upper=0), period, 1)
    same(evaluate(f"rsi(close, {period})", bars), 100 - 100 / (1 + gain / loss))


def test_rsi_by_hand():
    bars = b.market(b.flat("2024-03-04", "09:30", [1, 2, 3, 2])).bars
    # changes +1, +1, -1. RSI(2): bar 2 averages gain (1+1)/2 = 1, loss 0 -> 100;
    # bar 3: gain (1*1 + 0)/2 = 0.5, loss (0*1 + 1)/2 = 0.5 -> RS 1 -> 50
    same(evaluate("rsi(close, 2)", bars), [np.nan, np.nan, 100.0, 50.0])


@pytest.mark.parametrize("period", [3, 14])
def test_atr(walk, period):
    bars, df = walk
    prev_close = df["close"].shift()
    tr = pd.concat(
        [df["high"] - df["low"], (df["high"] - prev_close).abs(), (df["low"] - prev_close).abs()], axis=1
    ).max(axis=1)  # the first bar has no previous close: its range
    same(evaluate(f"atr({period})", bars), wilder(tr, period, 0))


def test_atr_by_hand():
    rows = b.minutes("2024-03-04", "09:30", [(10, 11, 9, 10), (10, 10.5, 9.5, 10), (12, 13, 11.5, 12.5)])
    # TR: 2; max(1, 0.5, 0.5) = 1; max(1.5, |13 - 10| = 3, 1.5) = 3. ATR(2): (2 + 1)/2 = 1.5, then (1.5 + 3)/2
    same(evaluate("atr(2)", b.market(rows).bars), [np.nan, 1.5, 2.25])


def test_vwap_resets_each_session(walk):
    bars, df = walk
    typical = (df["high"] + df["low"] + df["close"]) / 3
    pv = (typical * df["volume"]).groupby(df["date"]).cumsum()
    same(evaluate("vwap()", bars), pv / df["volume"].groupby(df["date"]).cumsum())


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (5, 1.5)])
def test_bollinger_bands(walk, period, k):
    bars, df = walk
    mid, std = df["close"].rolling(period).mean(), df["close"].rolling(period).std(ddof=0)
    same(evaluate(f"bb_upper(close, {period}, {k})", bars), mid + k * std)
    same(evaluate(f"bb_lower(close, {period}, {k})", bars), mid - k * std)


def test_highest_lowest_prev_abs_min_max_fields(walk):
    bars, df = walk
    same(evaluate("highest(high, 10)", bars), df["high"].rolling(10).max())
    same(evaluate("lowest(low, 10)", bars), df["low"].rolling(10).min())
    same(evaluate("prev(close, 3)", bars), df["close"].shift(3))
    same(evaluate("abs(close - open)", bars), (df["close"] - df["open"]).abs())
    same(evaluate("min(open, close)", bars), np.minimum(df["open"], df["close"]))
    same(evaluate("max(open, close)", bars), np.maximum(df["open"], df["close"]))
    same(evaluate("hl2", bars), (df["high"] + df["low"]) / 2)
    same(evaluate("hlc3 * 2 - 1", bars), (df["high"] + df["low"] + df["close"]) / 3 * 2 - 1)


@pytest.mark.parametrize("period", [1, 20])
def test_volume_ratio_uses_previous_bars(walk, period):
    bars, df = walk
    prior_mean = df["volume"].rolling(period).mean().shift()
    same(evaluate(f"volume_ratio({period})", bars), df["volume"] / prior_mean)


def test_prior_day_high_low(walk):
    bars, df = walk
    daily = df.groupby("date").agg(high=("high", "max"), low=("low", "min"))
    previous = daily.shift()
    same(evaluate("prior_day_high()", bars), df["date"].map(previous["high"]))
    same(evaluate("prior_day_low()", bars), df["date"].map(previous["low"]))


def test_opening_range_by_hand():
    one_day = [
        (100, 101, 99.5, 100.5),
        (100.5, 101.5, 100, 101),
        (101, 102, 100.8, 101.8),
        (101.8, 103, 101, 102.5),
    ]
    rows = b.minutes("2024-03-04", "09:30", one_day) + b.minutes("2024-03-05", "09:30", one_day[:3])
    bars = b.market(rows).bars
    # zone up to (not including) 09:32: bars 09:30 and 09:31 -> high max(101, 101.5), low min(99.5, 100);
    # NaN while the zone is still being drawn; a new zone each session
    same(evaluate("opening_range_high('09:32')", bars), [np.nan, np.nan, 101.5, 101.5, np.nan, np.nan, 101.5])
    same(evaluate("opening_range_low('09:32')", bars), [np.nan, np.nan, 99.5, 99.5, np.nan, np.nan, 99.5])


# --------------------------------------------------------------------------- zone breakout


def _zone_bars(closes_and_volumes: list[tuple[float, float]]) -> BarSeries:
    """Zone bars 09:30 and 09:31 span 99..101 with volume 100 each, then the given (close, volume) bars."""
    rows = [
        ("2024-03-04 09:30", 100, 101, 99, 100, 100.0),
        ("2024-03-04 09:31", 100, 100.5, 99.5, 100, 100.0),
    ]
    for k, (close, volume) in enumerate(closes_and_volumes):
        rows.append((f"2024-03-04 09:{32 + k:02d}", close, close, close, close, volume))
    return b.market(rows).bars


def _zone(direction: str = "up", second_chance: int = 1, require_return: int | None = None) -> str:
    # zone to 09:32, buffer 0.5, full ratio 1.5, relaxed 1.0, volume period 2, second chance on/off,
    # then the optional require_return flag (absent = the default, 0)
    tail = "" if require_return is None else f", {require_return}"
    return f"zone_breakout('{direction}', '09:32', 0.5, 1.5, 1.0, 2, {second_chance}{tail})"


def test_zone_breakout_full_volume_fires_on_the_first_bar_after_the_zone_and_once_per_session():
    # 09:32 is the first bar after the zone (drawn from 09:30 and 09:31): it closes 101.6 > 101 + 0.5
    # with volume 300 / mean(100, 100) = 3 >= 1.5 -> fires there; 09:33 is beyond again with big
    # volume but a session fires at most once
    bars = _zone_bars([(101.6, 300.0), (102.0, 1000.0)])
    assert evaluate(_zone(), bars).tolist() == [False, False, True, False]


def test_zone_breakout_inside_buffer_does_not_fire():
    bars = _zone_bars([(101.4, 300.0)])  # above the zone but not by the 0.5 buffer
    assert not evaluate(_zone(), bars).any()


@pytest.mark.parametrize("second_chance", [0, 1])
@pytest.mark.parametrize("require_return", [0, 1])
def test_zone_breakout_full_ratio_after_a_failed_break_always_fires(second_chance, require_return):
    bars = _zone_bars(
        [
            (101.6, 120.0),  # bar 2: break, ratio 120 / mean(100, 100) = 1.2 < 1.5 -> failed
            (101.7, 500.0),  # bar 3: still outside, ratio 500 / mean(100, 120) = 4.5 >= 1.5 -> fires
        ]
    )
    got = evaluate(_zone(second_chance=second_chance, require_return=require_return), bars)
    assert np.flatnonzero(got).tolist() == [3]


@pytest.mark.parametrize(
    ("second_chance", "require_return", "fires_at"), [(1, 0, 4), (1, 1, 4), (0, 0, None), (0, 1, None)]
)
def test_zone_breakout_second_chance_after_a_return(second_chance, require_return, fires_at):
    bars = _zone_bars(
        [
            (101.6, 120.0),  # bar 2: break, ratio 120 / 100 = 1.2 < 1.5 -> the first break failed
            (100.5, 100.0),  # bar 3: back inside the zone (<= 101)
            (101.7, 120.0),  # bar 4: breaks again, ratio 120 / mean(120, 100) = 1.09: < 1.5, >= relaxed 1.0
        ]
    )
    got = evaluate(_zone(second_chance=second_chance, require_return=require_return), bars)
    assert np.flatnonzero(got).tolist() == ([] if fires_at is None else [fires_at])


@pytest.mark.parametrize(("require_return", "fires_at"), [(None, [3]), (0, [3]), (1, [])])
def test_zone_breakout_second_chance_without_a_return(require_return, fires_at):
    # bar 2 fails (ratio 1.2 < 1.5); bar 3 stays outside with ratio 120 / mean(100, 120) = 1.09 >= 1.0:
    # the relaxed ratio is enough unless the block asks for a return inside the zone first
    bars = _zone_bars([(101.6, 120.0), (101.7, 120.0)])
    assert np.flatnonzero(evaluate(_zone(require_return=require_return), bars)).tolist() == fires_at


def test_zone_breakout_the_relaxed_ratio_applies_only_after_a_failed_break():
    # bar 2 breaks with ratio 120 / 100 = 1.2: >= relaxed 1.0 but < 1.5, and nothing failed before -> it
    # is the failed break, not a trigger
    bars = _zone_bars([(101.6, 120.0)])
    assert not evaluate(_zone(), bars).any()


def test_zone_breakout_a_return_counts_only_after_the_last_failed_break():
    bars = _zone_bars(
        [
            (101.6, 120.0),  # bar 2: fails (1.2)
            (100.5, 100.0),  # bar 3: back inside
            (101.7, 50.0),  # bar 4: fails again, ratio 50 / mean(100, 100) = 0.5 < relaxed 1.0
            (101.8, 100.0),  # bar 5: ratio 100 / mean(100, 50) = 1.33 >= 1.0, but no return since bar 4
            (100.8, 100.0),  # bar 6: back inside
            (101.9, 110.0),  # bar 7: ratio 110 / mean(100, 100) = 1.1 >= 1.0 -> fires
        ]
    )
    assert np.flatnonzero(evaluate(_zone(require_return=1), bars)).tolist() == [7]
    assert np.flatnonzero(evaluate(_zone(require_return=0), bars)).tolist() == [5]


def test_zone_breakout_down():
    # below the 99 zone low by more than 0.5 with ratio 3 -> fires; the 'up' side does not
    bars = _zone_bars([(98.4, 300.0)])
    assert evaluate(_zone("down"), bars).tolist() == [False, False, True]
    assert not evaluate(_zone("up"), bars).any()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zone_breakout('up', '10:30', 0.1, 1.5, 1.6, 20, 1)", r"relaxed_ratio 1.6 \(argument 5\) exceeds volume_ratio 1.5"),
        ("zone_breakout('sideways', '10:30', 0.1, 1.5, 1.2, 20, 1)", "must be 'up' or 'down'"),
    ],
)
def test_zone_breakout_bad_arguments_are_refused_at_parse_time(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)
    with pytest.raises(ValidationError, match="entry.long"):
        b.spec(entry={"long": text})


def test_zone_breakout_equal_ratios_are_allowed():
    parse_expression("zone_breakout('up', '10:30', 0.1, 1.5, 1.5, 20, 1, 1)")
    # a sampled 1.4000000000000001 (0.1 steps in binary) against a sum rounded to 1.4 is equal, not above
    parse_expression("zone_breakout('up', '10:30', 0.1, 1.4, 1.4000000000000001, 20, 1, 1)")


def test_the_shipped_zrce_space_never_draws_a_relaxed_ratio_above_the_full_one():
    from spec_space.loader import load_space

    space = load_space(Path(__file__).resolve().parents[2] / "spec_space" / "zrce.yaml")
    for seed in range(200):
        space.sample(seed)  # build() parses the entry expressions: a refused ratio raises here


# --------------------------------------------------------------------------- time, day, crosses, events


def test_time_between_is_half_open():
    bars = b.market(b.flat("2024-03-04", "09:44", [1, 1, 1, 1])).bars  # 09:44 .. 09:47
    assert evaluate("time_between('09:45', '09:47')", bars).tolist() == [False, True, True, False]


def test_time_between_with_a_start_after_the_end_spans_midnight():
    # '09:46' .. '09:45' is every minute but 09:45 (it selected nothing before); '20:00' .. '02:00' reads
    # as a trader means it: the evening and the next morning
    bars = b.market(b.flat("2024-03-04", "09:44", [1, 1, 1, 1])).bars  # 09:44 .. 09:47
    assert evaluate("time_between('09:46', '09:45')", bars).tolist() == [True, False, True, True]
    assert evaluate("time_between('09:47', '09:45')", bars).tolist() == [True, False, False, True]


def test_day_of_week(walk):
    bars, df = walk
    want = df["ts"].dt.day_name().isin(["Monday", "Wednesday"]).to_numpy()
    assert evaluate("day_of_week('mon', 'Wednesday')", bars).tolist() == want.tolist()
    with pytest.raises(ValueError, match="unknown day"):
        evaluate("day_of_week('funday')", bars)


def test_crosses_above_and_below_by_hand():
    bars = b.market(b.flat("2024-03-04", "09:30", [99, 100, 101, 100, 99, 101])).bars
    # above: this bar > 100 and the previous <= 100 -> bars 2 (100 -> 101) and 5 (99 -> 101)
    assert np.flatnonzero(evaluate("crosses_above(close, 100)", bars)).tolist() == [2, 5]
    # below: this bar < 100 and the previous >= 100 -> bar 4 (100 -> 99); bar 0 has no previous
    assert np.flatnonzero(evaluate("crosses_below(close, 100)", bars)).tolist() == [4]


def test_crosses_an_opening_range_on_the_first_bar_after_it_forms():
    # range 09:30..09:31: high 101; the 09:32 bar closes 101.5 above it -> a cross on that very bar
    # (the level had no value on 09:31, which closed inside the range that made it); 09:33 stays above:
    # no new cross. The next session repeats it on its own first bar after the range.
    day = [(100, 101, 99.5, 100.5), (100.5, 100.8, 100, 100.6), (101, 101.6, 101, 101.5), (101.5, 102, 101.4, 101.8)]
    rows = b.minutes("2024-03-04", "09:30", day) + b.minutes("2024-03-05", "09:30", day)
    bars = b.market(rows).bars
    assert np.flatnonzero(evaluate("crosses_above(close, opening_range_high('09:32'))", bars)).tolist() == [2, 6]
    assert np.flatnonzero(evaluate("crosses_above(close, opening_range_high('09:32') + 0.4)", bars)).tolist() == [2, 6]
    # level 101.5: 09:32's close 101.5 is not above it; 09:33 closes 101.8 after 101.5 -> the cross is there
    assert np.flatnonzero(evaluate("crosses_above(close, opening_range_high('09:32') + 0.5)", bars)).tolist() == [3, 7]
    # the low side: 09:32 closing below the range low 99.5 crosses it; the level on either side
    down = [(100, 101, 99.5, 100.5), (100.5, 100.8, 100, 100.6), (99.6, 99.6, 99.0, 99.2)]
    low_bars = b.market(b.minutes("2024-03-04", "09:30", down)).bars
    assert evaluate("crosses_below(close, opening_range_low('09:32'))", low_bars).tolist() == [False, False, True]
    assert evaluate("crosses_above(opening_range_low('09:32'), close)", low_bars).tolist() == [False, False, True]


def test_a_close_inside_on_the_first_bar_after_the_range_is_no_cross():
    day = [(100, 101, 99.5, 100.5), (100.5, 100.8, 100, 100.6), (100.6, 100.9, 100.4, 100.7), (100.7, 101.3, 100.7, 101.2)]
    bars = b.market(b.minutes("2024-03-04", "09:30", day)).bars
    # 09:32 closes 100.7 <= 101: no cross there; 09:33 closes 101.2 > 101 after 100.7 <= 101: the cross
    assert np.flatnonzero(evaluate("crosses_above(close, opening_range_high('09:32'))", bars)).tolist() == [3]


def test_crosses_against_pandas_and_nan_warmup(walk):
    bars, df = walk
    fast, slow = df["close"].rolling(5).mean(), df["close"].rolling(20).mean()
    want = (fast > slow) & (fast.shift() <= slow.shift())
    got = evaluate("crosses_above(sma(close, 5), sma(close, 20))", bars)
    assert got.tolist() == want.tolist()
    assert not got[:20].any()  # no signal while an indicator warms up (NaN compares false)
    assert want.sum() > 5


def test_boolean_logic_and_chained_comparisons():
    bars = b.market(b.flat("2024-03-04", "09:30", [1, 2, 3, 4])).bars
    assert evaluate("1 < close <= 3", bars).tolist() == [False, True, True, False]
    assert evaluate("close < 2 or close > 3", bars).tolist() == [True, False, False, True]
    assert evaluate("not (close >= 2 and close < 4)", bars).tolist() == [True, False, False, True]


def _with_events(bars, events):
    from evaluator.market import attach_signals
    from spec_space.models import StrategySpec

    spec = StrategySpec.model_validate({
        "name": "s", "instrument": {"type": "stock", "symbol": "SPY"},
        "entry": {"long": "external_signal('t', 'buy', 0)"}, "signals": {"t": events},
    })
    attach_signals(bars, spec)
    return bars


NY5 = dt.timezone(dt.timedelta(hours=-5))


def test_external_signal_window_and_levels():
    bars = b.market(b.flat("2024-03-04", "09:30", [1, 1, 1, 1, 1, 1])).bars
    events = [
        # known from the 09:31 bar (it starts after 09:30:20); a sell at 09:34 closes the buy's window
        {"time": dt.datetime(2024, 3, 4, 9, 30, 20, tzinfo=NY5), "side": "buy", "entry": 1.5, "stop": 0.5,
         "targets": [2.0, 3.0]},
        {"time": dt.datetime(2024, 3, 4, 9, 34, tzinfo=NY5), "side": "sell", "entry": 1.2, "stop": 2.0},
    ]
    _with_events(bars, events)
    assert evaluate_bool("external_signal('t', 'BUY', 0)", bars).tolist() == [False, True, False, False, False, False]
    assert evaluate_bool("external_signal('t', 'buy', 2)", bars).tolist() == [False, True, True, False, False, False]
    assert evaluate_bool("external_signal('t', 'buy', 60)", bars).tolist() == [False, True, True, True, False, False]
    assert evaluate_bool("external_signal('t', 'sell', 60)", bars).tolist() == [False] * 4 + [True, True]
    entry = evaluate("signal_level('t', 'entry', 60)", bars)
    assert np.isnan(entry[0]) and entry[1:4].tolist() == [1.5] * 3 and entry[4:].tolist() == [1.2, 1.2]
    target2 = evaluate("signal_level('t', 'target2', 60)", bars)
    assert target2[1] == 3.0 and np.isnan(target2[4])  # the sell signal has no targets
    with pytest.raises(ValueError, match="unknown field"):
        evaluate("signal_level('t', 'price', 60)", bars)


def test_numeric_expression_is_not_a_condition():
    bars = b.market(b.flat("2024-03-04", "09:30", [1, 1])).bars
    with pytest.raises(ValueError, match="compare it with something"):
        evaluate_bool("sma(close, 2)", bars)


def test_every_catalogue_function_is_covered_here():
    tested = {
        "sma", "ema", "rsi", "atr", "vwap", "bb_upper", "bb_lower", "highest", "lowest", "prev",
        "volume_ratio", "opening_range_high", "opening_range_low", "prior_day_high", "prior_day_low",
        "zone_breakout", "time_between", "day_of_week", "crosses_above", "crosses_below",
        "external_signal", "signal_level", "abs", "min", "max",
    }  # fmt: skip
    # a new catalogue function needs an evaluator implementation and a test in this file
    assert not set(FUNCTIONS) - tested, (
        f"catalogue functions not tested here: {sorted(set(FUNCTIONS) - tested)}"
    )
    assert not tested - set(FUNCTIONS), (
        f"tested here but gone from the catalogue: {sorted(tested - set(FUNCTIONS))}"
    )


# --------------------------------------------------------------------------- errors point to the column


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("close > smaa(close, 5)", 8, "unknown function 'smaa'"),
        ("close > sma(close)", 8, "takes 2..2 arguments, got 1"),
        ("rsi(close, 14, 3) > 70", 0, "takes 2..2 arguments, got 3"),
        ("time_between(930, '10:00')", 13, "argument 1 must be a quoted string"),
        ("time_between('9:30', '10:00')", 13, "argument 1 must be a time as 'HH:MM'"),
        ("time_between('09:30', '25:00')", 22, "argument 2 must be a time as 'HH:MM'"),
        ("close > 1 and time_between('10:00', '10:00')", 14, "an empty window"),
        ("sma(close, '5') > 1", 11, "argument 2 must not be a string"),
        ("close > opne", 8, "unknown name 'opne'"),
        ("1 +* 2", 3, "syntax error"),
        ("close.real > 1", 0, "'Attribute' is not allowed"),
    ],
)
def test_expression_errors_point_to_the_column(text, column, message):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.column == column
    assert message in str(info.value)
    # the message shows the expression with a caret under the column
    lines = str(info.value).splitlines()
    assert lines[-2].strip() == text
    assert lines[-1].index("^") - lines[-2].index(text[0]) == column


def test_spec_validation_reports_the_expression_column():
    with pytest.raises(ValidationError) as info:
        b.spec(entry={"long": "close > smaa(close, 5)"})
    text = str(info.value)
    assert "entry.long" in text and "unknown function 'smaa'" in text and "        ^" in text
