"""The offline reader of trading ideas: each idea's instrument, class, timeframe, windows, entry,
exits and sizing, clause by clause (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeds.idea_parser import named_symbols, parse_idea
from seeds.providers import split_ideas
from spec_space.space import DefaultSource, SpecSpace, check_space

REPO = Path(__file__).resolve().parents[2]
SAMPLE = split_ideas((REPO / "seeds" / "strat_ideas_sample.txt").read_text())
MORE = split_ideas((REPO / "seeds" / "strat_ideas_more.txt").read_text())


def _spec(idea: str):
    parsed = parse_idea(idea, name="t")
    assert not parsed.rejected, parsed.problems
    space = SpecSpace.model_validate(parsed.space)
    check_space(space)
    return parsed, space.build(space.suggest(DefaultSource(space))), space


# (idea, symbol, asset class, timeframe, expected spec attributes at the defaults, clause words that stay unmapped)
CASES = {
    "zrce": (SAMPLE[0], "SPY", "option", "1min", {
        "entry.window_start": "09:30", "entry.window_end": "15:45",
        "exits.take_profit.pct": 0.10, "exits.stop_loss.pct": 0.07, "exits.trailing.pct": 0.08,
        "exits.trailing.activation_pct": 0.03, "exits.max_hold_minutes": 15, "sizing.max_trades_per_day": 1,
        "direction": "both", "instrument.legs[0].dte": 0, "instrument.legs[0].right": "auto",
    }, ["zone_breakout('up', '10:30', 0.1, 1.5, 1.2, 20, 1)"], []),
    "ghetto": (SAMPLE[1], "AMD", "option", "1min", {
        "instrument.legs[0].value": 0.25, "instrument.legs[0].dte": 7, "instrument.legs[0].right": "call",
        "instrument.staged.underlying_move_pct": 0.015, "instrument.staged.premium_up_pct": 0.15,
        "instrument.staged.width": 1.0, "exits.take_profit.pct": 0.30, "exits.stop_loss.pct": 0.40,
        "exits.max_hold_minutes": 60, "direction": "long",
    }, ["time_between('09:45', '09:46')"], ["Put version is the same thing mirrored"]),
    "mes": (SAMPLE[2], "MES", "future", "5min", {
        "exits.eod_flat_time": "15:55", "sizing.max_trades_per_day": 1, "sizing.quantity": 1.0,
        "sizing.mode": "fixed", "direction": "both",
    }, ["crosses_above(close, opening_range_high('09:45'))", "opening_range_high('09:45') - opening_range_low('09:45') <= 20.0",
        "close < opening_range_low('09:45')"], []),
    "forex": (SAMPLE[3], "EURUSD", "forex", "1h", {
        "exits.stop_loss.atr": 1.5, "exits.stop_loss.atr_period": 14, "exits.take_profit.atr": 3.0,
        "sizing.mode": "risk", "sizing.risk_pct": 0.01, "entry.window_start": "03:00", "entry.window_end": "11:00",
        "direction": "both",
    }, ["crosses_above(ema(close, 20), ema(close, 50))", "atr(14) * 1.5 <= 40.0 * 0.0001"], ["Gold (XAUUSD)"]),
    "sma": (SAMPLE[4], "SPY", "stock", "1d", {"exits.stop_loss.pct": 0.05, "direction": "long"},
            ["crosses_above(sma(close, 50), sma(close, 200))"], ["Check it against buy and hold"]),
    "nvda": (MORE[0], "NVDA", "stock", "5min", {
        "entry.window_start": "09:45", "entry.window_end": "11:00", "exits.eod_flat_time": "15:55",
        "exits.stop_loss.pct": 0.008, "exits.take_profit.pct": 0.016, "exits.break_even.trigger_pct": 0.008,
        "exits.partial_take_profits[0].pct": 0.008, "exits.partial_take_profits[0].fraction": 0.5,
        "sizing.mode": "risk", "sizing.risk_pct": 0.005, "sizing.max_trades_per_day": 2, "direction": "long",
    }, ["crosses_above(close, vwap())", "day_of_week('tue', 'wed', 'thu')"], ["mondays and fridays"]),
    "qqq": (MORE[1], "QQQ", "option", "5min", {
        "instrument.legs[0].value": 0.30, "instrument.legs[0].dte": 5, "instrument.legs[0].right": "call",
        "instrument.staged.width": 2.5, "instrument.staged.premium_up_pct": 0.20,
        "entry.window_start": "10:00", "entry.window_end": "14:00", "exits.eod_flat_time": "15:30",
        "exits.take_profit.pct": 0.40, "exits.stop_loss.pct": 0.25, "sizing.max_trades_per_day": 1,
    }, ["crosses_above(close, ema(close, 20))"], []),
    "mnq": (MORE[2], "MNQ", "future", "1min", {
        "exits.stop_loss.points": 20.0, "exits.take_profit.points": 30.0, "exits.eod_flat_time": "11:30",
        "sizing.quantity": 2.0, "sizing.max_trades_per_day": 1, "direction": "both",
    }, ["crosses_above(close, opening_range_high('09:45') + 0.5)", "day_of_week('tue', 'wed', 'thu')",
        "opening_range_high('09:45') - opening_range_low('09:45') <= 40.0"], []),
    "gbpusd": (MORE[3], "GBPUSD", "forex", "15min", {
        "exits.stop_loss.pips": 25.0, "exits.take_profit.pips": 50.0, "exits.eod_flat_time": "16:00",
        "sizing.mode": "risk", "sizing.risk_pct": 0.005, "sizing.max_trades_per_day": 1, "direction": "both",
    }, ["crosses_above(close, opening_range_high('02:00') + 0.0003)", "day_of_week('mon', 'tue', 'wed', 'thu')"], []),
}


def _get(obj, path: str):
    for part in path.replace("[", ".").replace("]", "").split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


@pytest.mark.parametrize("key", sorted(CASES))
def test_idea_maps_its_instrument_windows_entry_exits_and_sizing(key):
    idea, symbol, asset, timeframe, fields, expressions, unmapped = CASES[key]
    parsed, spec, space = _spec(idea)
    assert (spec.instrument.symbol, spec.instrument.type, spec.timeframe) == (symbol, asset, timeframe)
    for path, value in fields.items():
        got = _get(spec, path)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, (path, got)
    text = f"{spec.entry.long} | {spec.entry.short} | {spec.exits.exit_long} | {spec.exits.exit_short}"
    for expression in expressions:
        assert expression in text
    left = [c["clause"] for c in parsed.unmapped()]
    for words in unmapped:
        assert any(words in c for c in left), left
    # every clause is accounted for, and the provenance carries the map
    record = space.provenance
    assert len(record["clause_map"]) + len(record["unmapped"]) == len(parsed.clauses)
    assert all(c["fields"] for c in record["clause_map"]) and all(c["reason"] for c in record["unmapped"])
    # no written space trades an instrument the idea does not name
    assert spec.instrument.symbol in named_symbols(idea)


def test_every_number_the_rules_read_has_a_range_around_it():
    _, _, space = _spec(SAMPLE[0])
    for name in ("stop_loss", "take_profit", "trailing_pct", "trail_activation", "max_hold", "buffer"):
        param = space.params[name]
        low, high = getattr(param, "float_range", None) or param.int_range
        assert low < param.default < high, name


def test_prose_words_are_never_an_instrument():
    idea = "IDEA: buy the dip\nGo LONG when RSI is low and ATR is high. Hold it a while."
    parsed = parse_idea(idea)
    assert parsed.rejected and parsed.symbol is None
    assert "no instrument" in parsed.problems[0]


def test_an_idea_without_a_mappable_entry_is_rejected_with_its_clauses():
    idea = "Gap and go on TSLA\nBuy TSLA when it gaps up and holds the first pullback. Stop 2%, target 4%."
    parsed = parse_idea(idea)
    assert parsed.rejected and parsed.space is None
    assert any("gap" in c["reason"] for c in parsed.unmapped())
    assert any("entry" in p for p in parsed.problems)


def test_weekday_phrases():
    for text, days in (("only Mon-Wed", "'mon', 'tue', 'wed'"), ("no fridays", "'mon', 'tue', 'wed', 'thu'"),
                       ("Tuesday through Thursday", "'tue', 'wed', 'thu'")):
        idea = f"SPY VWAP\nGo long when price reclaims VWAP, {text}. Stop 1%."
        _, spec, _ = _spec(idea)
        assert f"day_of_week({days})" in spec.entry.long


def test_a_one_line_idea_is_read_once_as_its_body():
    idea = "Buy SPY when the 10 minute moving average crosses above the 50 minute one; sell on the cross down; 0.5% stop."
    parsed, spec, space = _spec(idea)
    assert spec.entry.long == "crosses_above(sma(close, 10), sma(close, 50))"
    assert spec.exits.exit_long == "crosses_below(sma(close, 10), sma(close, 50))"
    assert spec.exits.stop_loss.pct == 0.005 and sorted(space.params) == ["fast", "slow", "stop_loss"]


def test_rsi_dip_and_recovery_vwap_target_and_named_weekdays():
    idea = ("AAPL RSI bounce\nOn 15 minute bars buy AAPL when RSI(2) dips below 10 and then recovers above 30. "
            "Stop 1%, target VWAP. Only Monday and Wednesday. Max hold 2 hours.")
    _, spec, _ = _spec(idea)
    assert spec.timeframe == "15min" and spec.exits.max_hold_minutes == 120
    assert spec.entry.long == ("crosses_above(rsi(close, 2), 30.0) and lowest(rsi(close, 2), 5) < 10.0 and "
                               "day_of_week('mon', 'wed')")
    assert spec.exits.exit_long == "close >= vwap()"


def test_prior_day_break_with_a_side_filter_a_trail_armed_in_r_and_an_entry_cutoff():
    idea = ("SPY prior day high break\nGo long SPY on a 5 min close above the prior day high, only take longs above "
            "VWAP. Stop 0.5%, take half off at 1R, trail 0.4% once up 1R. No entries after 14:00.")
    _, spec, _ = _spec(idea)
    assert spec.entry.long == "crosses_above(close, prior_day_high()) and close > vwap()"
    assert (spec.entry.window_start, spec.entry.window_end) == (None, "14:00")  # a cutoff opens no window
    assert (spec.exits.trailing.pct, spec.exits.trailing.activation_pct) == (0.004, 0.005)
    assert spec.exits.partial_take_profits[0].pct == 0.005


def test_contracts_per_equity_stays_unmapped_with_its_reason():
    idea = ("ES range\nTrade ES on 1 minute bars. Mark the first 30 minutes range. Go long on a break above the range "
            "high, short on a break below the range low. Stop 8 points, target the other side of the range. "
            "1 contract per $25k.")
    parsed, spec, _ = _spec(idea)
    assert spec.instrument.symbol == "ES" and spec.exits.stop_loss.points == 8.0
    assert spec.exits.exit_long == "close >= opening_range_high('10:00')"
    (left,) = parsed.unmapped()
    assert left["clause"] == "1 contract per $25k." and "contracts per amount of equity" in left["reason"]


def test_an_index_alone_is_no_instrument_and_the_reason_says_so():
    parsed = parse_idea("SPX 0DTE\nBuy SPX calls at 10:00 when it crosses above the 20 EMA. TP 50%, SL 30%.")
    assert parsed.rejected and "index SPX" in parsed.problems[0]
