"""Pydantic models of one concrete strategy: a :class:`StrategySpec`.

A spec is a combination of building blocks (see ``catalogue.md``): an instrument (stock, option
legs, future, forex pair), entry signals, exits, sizing, direction and costs. Unknown keys are
errors everywhere, so a typo never silently becomes a default.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spec_space.expressions import parse_expression
from spec_space.instruments import (
    FUTURES,
    TRADING_DAY_START_MINUTE,
    InstrumentType,
    clock_session_minute,
    forex_pair,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_expression(value: str | None) -> str | None:
    if value is not None:
        parse_expression(value)
    return value


def _session_minute(value: str, instrument_type: InstrumentType) -> int:
    t = dt.time.fromisoformat(value)
    return clock_session_minute(t.hour * 60 + t.minute, instrument_type)


def _check_time(value: str) -> str:
    try:
        dt.time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a time like '09:45', got {value!r}") from None
    return value


# --------------------------------------------------------------------------- instrument


class OptionLeg(_Strict):
    """One option leg, chosen at entry from the chain by days to expiry and delta, moneyness or offset."""

    right: Literal["call", "put", "auto"] = Field(
        "auto", description="'auto' buys calls on long signals and puts on short signals"
    )
    side: Literal["buy", "sell"] = "buy"
    dte: int = Field(
        0, ge=0, le=400, description="days to expiry; the nearest expiry with at least this many days"
    )
    select: Literal["delta", "moneyness", "offset"] = Field(
        "delta",
        description="delta: |delta| closest to value; moneyness: strike closest to spot*(1+value) toward OTM; "
        "offset: strike closest to spot + value (calls) or spot - value (puts), in price units toward OTM",
    )
    value: float = Field(0.5, description="target |delta| (0..1), moneyness fraction or price offset")
    ratio: int = Field(1, ge=1, le=10, description="contracts of this leg per unit of position")

    @model_validator(mode="after")
    def _delta_range(self) -> OptionLeg:
        if self.select == "delta" and not 0.01 <= self.value <= 0.99:
            raise ValueError(f"a delta target must be between 0.01 and 0.99, got {self.value}")
        return self


class StagedConversion(_Strict):
    """The "ghetto spread": a long option later converted to a vertical by selling a farther OTM leg."""

    underlying_move_pct: float | None = Field(
        None, gt=0, description="convert when the underlying moved this fraction in the trade's favour"
    )
    premium_up_pct: float | None = Field(
        None, gt=0, description="convert when the long premium rose this fraction"
    )
    width: float = Field(1.0, gt=0, description="short strike = long strike +/- width (same expiry)")
    min_net_debit: float = Field(
        0.01, ge=0, description="skip the conversion if the debit left would be below this"
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> StagedConversion:
        if self.underlying_move_pct is None and self.premium_up_pct is None:
            raise ValueError("a staged conversion needs underlying_move_pct and/or premium_up_pct")
        return self


class Instrument(_Strict):
    type: InstrumentType
    symbol: str = Field(
        description="stock/ETF ticker, option underlying, futures root (MES) or forex pair (EURUSD)"
    )
    legs: list[OptionLeg] = Field(default_factory=list, description="option legs (type: option), 1..4")
    staged: StagedConversion | None = Field(
        None, description="option only: convert a single long leg to a vertical"
    )
    max_staleness_minutes: int = Field(
        15, ge=1, le=390, description="options: a contract's last trade older than this is no price"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        if self.type == "option":
            if not 1 <= len(self.legs) <= 4:
                raise ValueError("an option instrument needs 1 to 4 legs")
            if self.staged is not None and (len(self.legs) != 1 or self.legs[0].side != "buy"):
                raise ValueError("a staged conversion starts from exactly one bought leg")
        elif self.legs or self.staged is not None:
            raise ValueError(f"legs and staged apply to options only, not to type {self.type!r}")
        if self.type == "future" and self.symbol not in FUTURES:
            raise ValueError(f"unknown futures root {self.symbol!r}; known: {', '.join(FUTURES)}")
        if self.type == "forex":
            pair = forex_pair(self.symbol).pair
            # The engines book a pair's price moves as dollars: right only when the quote currency is USD.
            # USDJPY's moves are yen; counting them as dollars would overstate PnL and risk about 150x.
            if not pair.endswith("USD"):
                raise ValueError(
                    f"forex pair {self.symbol!r} is quoted in {pair[-3:]}, but the account and every metric are "
                    "in USD and the engines do not convert quote-currency PnL yet; trade a USD-quoted pair "
                    "(EURUSD, GBPUSD, AUDUSD, NZDUSD, XAUUSD)"
                )
        return self


# --------------------------------------------------------------------------- signals and exits


class Entry(_Strict):
    long: str | None = Field(
        None, description="expression: enter long (or buy the 'auto' option legs as calls)"
    )
    short: str | None = Field(None, description="expression: enter short (or buy the 'auto' legs as puts)")
    window_start: str | None = Field(
        None,
        description="no entries before this New York time of the trading session, e.g. '09:45'. Forex days "
        "roll at 17:00 and futures days open at 18:00 the evening before their date: a time at or after "
        "that is the session's opening evening, an earlier one its trading date (forex '03:00'-'11:00' is "
        "the London morning, '20:00'-'02:00' the Asian session)",
    )
    window_end: str | None = Field(
        None,
        description="no entries at or after this New York time of the trading session, e.g. '15:30' (read "
        "like window_start; the window must end after it starts within one session)",
    )

    _check_long = field_validator("long", "short")(_check_expression)

    @field_validator("window_start", "window_end")
    @classmethod
    def _times(cls, value: str | None) -> str | None:
        return None if value is None else _check_time(value)


class SignalEvent(_Strict):
    """One external trade signal (a Kirkland CSV row, normalised by the seeding agents)."""

    time: dt.datetime = Field(description="when the signal was issued (with its UTC offset)")
    side: Literal["buy", "sell"]
    entry: float = Field(gt=0)
    stop: float = Field(gt=0)
    targets: list[float] = Field(default_factory=list, description="take-profit levels, nearest first")

    @model_validator(mode="after")
    def _sides(self) -> SignalEvent:
        sign = 1 if self.side == "buy" else -1
        if sign * (self.entry - self.stop) <= 0:
            raise ValueError(f"a {self.side} signal needs its stop on the losing side of entry {self.entry}")
        return self


class Level(_Strict):
    """A distance from the entry price: exactly one of pct (of entry price or premium), atr multiple, points,
    pips, or taken from the external signal that triggered the entry (signal_stop / signal_target)."""

    pct: float | None = Field(None, gt=0, description="fraction of the entry price (options: of the premium)")
    atr: float | None = Field(
        None, gt=0, description="multiple of atr(atr_period) of the signal series at entry"
    )
    atr_period: int = Field(14, ge=2, le=500)
    points: float | None = Field(None, gt=0, description="price units of the instrument")
    pips: float | None = Field(None, gt=0, description="forex pips")
    signal_stop: float | None = Field(
        None, gt=0, description="this multiple of the triggering signal's entry-to-stop distance"
    )
    signal_target: int | None = Field(
        None, ge=1, le=5, description="the triggering signal's take-profit level number (1 = nearest)"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Level:
        kinds = ("pct", "atr", "points", "pips", "signal_stop", "signal_target")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(kinds)} (got {given or 'none'})")
        return self


class Trailing(_Strict):
    pct: float = Field(
        gt=0, description="trail this fraction below the best price since entry (above, for shorts)"
    )
    activation_pct: float = Field(0.0, ge=0, description="start trailing once the trade is up this fraction")


class BreakEven(_Strict):
    trigger_pct: float = Field(gt=0, description="once up this fraction, move the stop to entry")
    buffer_pct: float = Field(0.0, ge=0, description="... plus this fraction in the trade's favour")


class PartialTakeProfit(_Strict):
    pct: float = Field(gt=0, description="take profit at this gain fraction")
    fraction: float = Field(gt=0, lt=1, description="fraction of the original quantity to close there")


class Exits(_Strict):
    stop_loss: Level | None = None
    take_profit: Level | None = None
    trailing: Trailing | None = None
    break_even: BreakEven | None = None
    partial_take_profits: list[PartialTakeProfit] = Field(default_factory=list)
    max_hold_minutes: int | None = Field(None, ge=1, description="time exit")
    eod_flat_time: str | None = Field(
        None,
        description="close everything at the first bar starting at or after this New York time of the "
        "trading session (or at a session's last bar if it ends earlier), e.g. '15:55'. Forex and futures "
        "sessions open the evening before their date (17:00 / 18:00): a time at or after that is the "
        "opening evening, so forex '16:55' closes before the 17:00 roll and '22:00' on the evening the "
        "session opens",
    )
    close_days_before_expiry: int | None = Field(
        None,
        ge=0,
        description="options: close at the first bar of the session N trading sessions before the expiry "
        "session (0: the expiry session itself)",
    )
    exit_long: str | None = Field(None, description="expression: close longs")
    exit_short: str | None = Field(None, description="expression: close shorts")

    _check_exits = field_validator("exit_long", "exit_short")(_check_expression)

    @field_validator("eod_flat_time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else _check_time(value)

    @model_validator(mode="after")
    def _partials(self) -> Exits:
        if sum(p.fraction for p in self.partial_take_profits) >= 1:
            raise ValueError("partial take-profit fractions must add up to less than 1 (the rest rides)")
        target = self.take_profit.pct if self.take_profit is not None else None
        for n, partial in enumerate(self.partial_take_profits):
            # price reaches the final target first, which closes everything: such a partial never fills
            if target is not None and partial.pct > target:
                raise ValueError(
                    f"exits.partial_take_profits[{n}].pct = {partial.pct:g} is beyond exits.take_profit.pct = "
                    f"{target:g}: the final target closes the whole position before price gets there, so this "
                    "partial could never fill; lower the partial's pct to at most the target's, raise "
                    "take_profit.pct, or drop the partial (in a space, draw the partial as a fraction of "
                    "the target or give the two ranges no overlap)"
                )
        return self


class Sizing(_Strict):
    mode: Literal["fixed", "pct_equity", "risk"] = "fixed"
    quantity: float = Field(1, gt=0, description="fixed: shares, contracts (per leg ratio) or lots")
    pct_equity: float = Field(0.1, gt=0, le=1, description="pct_equity: fraction of equity to commit")
    risk_pct: float = Field(
        0.01, gt=0, le=0.2, description="risk: fraction of equity lost if the stop is hit"
    )
    max_positions: int = Field(
        1, ge=1, le=1, description="concurrent positions (the engines hold one at a time)"
    )
    max_trades_per_day: int | None = Field(None, ge=1)


class Costs(_Strict):
    commission_per_share: float = Field(0.0, ge=0)
    commission_per_contract: float = Field(
        0.0, ge=0, description="options and futures, per contract per side"
    )
    commission_per_lot: float = Field(0.0, ge=0, description="forex, per standard lot per side")
    commission_pct: float = Field(0.0, ge=0, description="fraction of traded value per side")
    slippage_bps: float = Field(0.0, ge=0, description="stocks and forex: basis points against each fill")
    slippage_ticks: float = Field(0.0, ge=0, description="futures: ticks against each fill")
    option_half_spread: float = Field(
        0.0, ge=0, description="options: dollars per share added to buys and subtracted from sells"
    )


class StrategySpec(_Strict):
    """One concrete strategy. Every field is a building block from the catalogue."""

    name: str = Field(min_length=1)
    description: str = ""
    instrument: Instrument
    timeframe: Literal["1min", "5min", "15min", "1h", "1d"] = "1min"
    session: Literal["regular", "extended"] = Field(
        "regular",
        description="bars traded and read: 'regular' = stocks 09:30 to the close, futures the root's day "
        "session (MES 09:30-16:00 New York); 'extended' = every bar (futures from the 18:00 Globex open "
        "the evening before). Forex: every bar either way, its day rolling at 17:00 New York",
    )
    direction: Literal["long", "short", "both"] = "long"
    entry: Entry
    exits: Exits = Field(default_factory=Exits)
    sizing: Sizing = Field(default_factory=Sizing)
    costs: Costs = Field(default_factory=Costs)
    initial_cash: float = Field(100_000.0, gt=0)
    signals: dict[str, list[SignalEvent]] = Field(
        default_factory=dict, description="external signal events by name, read by external_signal(...)"
    )

    @model_validator(mode="after")
    def _coherent(self) -> StrategySpec:
        if self.direction in ("long", "both") and self.entry.long is None:
            raise ValueError(f"direction {self.direction!r} needs entry.long")
        if self.direction in ("short", "both") and self.entry.short is None:
            raise ValueError(f"direction {self.direction!r} needs entry.short")
        is_option = self.instrument.type == "option"
        for name in ("stop_loss", "take_profit"):
            level = getattr(self.exits, name)
            if level is None:
                continue
            if is_option and level.pct is None:
                raise ValueError(f"exits.{name}: options use pct of the premium")
            if level.pips is not None and self.instrument.type != "forex":
                raise ValueError(f"exits.{name}: pips apply to forex only")
        names = self.external_signal_names()
        missing = names - set(self.signals)
        if missing:
            raise ValueError(f"expressions read external signals {sorted(missing)} that spec.signals does not hold")
        uses_signal_levels = any(
            lvl is not None and (lvl.signal_stop is not None or lvl.signal_target is not None)
            for lvl in (self.exits.stop_loss, self.exits.take_profit)
        )
        if uses_signal_levels and not names:
            raise ValueError("signal_stop / signal_target levels need entries triggered by external_signal(...)")
        if self.exits.stop_loss is not None and self.exits.stop_loss.signal_target is not None:
            raise ValueError("exits.stop_loss: use signal_stop (signal_target is for take_profit)")
        if self.exits.take_profit is not None and self.exits.take_profit.signal_stop is not None:
            raise ValueError("exits.take_profit: use signal_target (signal_stop is for stop_loss)")
        if self.sizing.mode == "risk" and (self.exits.stop_loss is None):
            raise ValueError("sizing mode 'risk' needs exits.stop_loss to know the risk per unit")
        if self.exits.close_days_before_expiry is not None and not is_option:
            raise ValueError("exits.close_days_before_expiry applies to options only")
        start, end = self.entry.window_start, self.entry.window_end
        if start is not None and end is not None:
            kind = self.instrument.type
            if _session_minute(start, kind) >= _session_minute(end, kind):
                day_start = TRADING_DAY_START_MINUTE[kind]
                rolls = f" (its trading day starts at {day_start // 60:02d}:00 the evening before)" if day_start else ""
                raise ValueError(
                    f"entry window {start}-{end} is empty for a {kind} session{rolls}: window_end must come "
                    "after window_start within one session"
                )
        if self.timeframe == "1d" and (self.exits.max_hold_minutes or self.exits.eod_flat_time):
            raise ValueError("daily bars cannot use minute-based exits (max_hold_minutes, eod_flat_time)")
        return self

    def external_signal_names(self) -> set[str]:
        """Names of external signal files the entry and exit expressions read."""
        import ast

        names: set[str] = set()
        for text in (self.entry.long, self.entry.short, self.exits.exit_long, self.exits.exit_short):
            if text is None:
                continue
            for node in ast.walk(parse_expression(text)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "external_signal":
                    names.add(node.args[0].value)  # type: ignore[attr-defined]
        return names
