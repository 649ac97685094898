"""SpecStrategy's live mode (the class the backtests confirm) trading against the fake Tradier and
TradeLocker servers on 127.0.0.1, through the deployments' Lumibot brokers (every order through the broker
adapter), in this process.

Every run is deterministic whatever the wall clock says: the entry signal is always true, the exits come
from prices the test moves (a bracket or a partial target the fake fills), from the reconciled position at
a restart, or from an end-of-day time every bar is past.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from brokers.live import UnsupportedLive, live_problem, live_strategy
from brokers.live import bars as _live
from evaluator.lumibot.env import NETWORK_ENV
from spec_space.models import StrategySpec

NY = ZoneInfo("America/New_York")
_LUMIBOT_UNSET = ("IS_BACKTESTING", *NETWORK_ENV, "DATA_SOURCE_DELAY")


def _load_fakes() -> Any:
    """The broker tests' fake servers, loaded under the name tests/brokers/conftest.py gives them."""
    if "broker_fakes" in sys.modules:
        return sys.modules["broker_fakes"]
    package_dir = Path(__file__).parents[1] / "brokers" / "fakes"
    spec = importlib.util.spec_from_file_location(
        "broker_fakes", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["broker_fakes"] = module
    spec.loader.exec_module(module)
    return module


fakes = _load_fakes()


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    """Every thread a test starts (Lumibot's executors, schedulers, polling streams) ends with it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10.0
    left: list[threading.Thread] = []
    while time.monotonic() < deadline:
        # the fake servers' per-connection handlers end when the client's idle connection is dropped
        left = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and "process_request" not in t.name
        ]
        if not left:
            return
        time.sleep(0.1)
    pytest.fail(f"threads left running: {[t.name for t in left]}")


@pytest.fixture
def live_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Lumibot live in this process: no .env, no banner, no shared bar cache on disk, nothing written to
    the working directory, and pytest's Ctrl-C handler back afterwards (Trader.run_all replaces it)."""
    monkeypatch.chdir(tmp_path)
    for name in _LUMIBOT_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LUMIBOT_DISABLE_DOTENV", "true")
    monkeypatch.setenv("LUMIBOT_HIDE_BOTSPOT_TIP", "1")
    monkeypatch.setenv("LUMIBOT_SHARED_BARS", "false")
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield tmp_path
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def tradier(live_env: Path) -> Iterator[tuple[Any, Callable[[], Any]]]:
    """The fake Tradier and a maker of the deployments' Tradier brokers pointed at it (one per "process")."""
    from brokers.lumibot_tradier import TradierBroker
    from brokers.tradier import TradierAdapter

    fake = fakes.FakeTradier()
    base_url = fake.start()
    brokers: list[Any] = []

    def make() -> Any:
        adapter = TradierAdapter(
            fake.token,
            fake.account_id,
            base_url=base_url,
            timeout=2.0,
            retry_backoff_base=0.0,
            retry_max_backoff=0.0,
            submit_settle_seconds=0.0,
        )
        # "24/7": trade whatever the wall clock says
        broker = TradierBroker(adapter, paper=True, polling_interval=0.2, market="24/7")
        brokers.append(broker)
        return broker

    try:
        yield fake, make
    finally:
        for broker in brokers:
            broker.close()
            broker.data_source.shutdown()
        fake.stop()


@pytest.fixture
def tradelocker(live_env: Path) -> Iterator[tuple[Any, Any, Any]]:
    from brokers.lumibot_tradelocker import TradeLockerBroker
    from brokers.tradelocker import TradeLockerAdapter

    fake = fakes.FakeTradeLocker()
    fake.start()
    adapter = TradeLockerAdapter(
        fake.username,
        fake.password,
        fake.server_name,
        environment_url=fake.root_url,
        timeout=2.0,
        retry_backoff_base=0.0,
        retry_max_backoff=0.0,
        submit_settle_seconds=0.0,
    )
    broker = TradeLockerBroker(adapter, polling_interval=0.2, market="24/7")
    try:
        yield fake, adapter, broker
    finally:
        broker.close()
        broker.data_source.shutdown()
        fake.stop()


@contextlib.contextmanager
def trading(strategy: Any, folder: Path) -> Iterator[Any]:
    """Run ``strategy`` with a Lumibot Trader (its executor thread) until the block ends, then stop it."""
    from lumibot.traders import Trader

    from brokers.paper import stop_trader

    trader = Trader(logfile=str(folder / "lumibot.log"))
    trader.add_strategy(strategy)
    trader.run_all(async_=True)
    try:
        yield trader
    finally:
        stop_trader(trader, timeout=10.0)
        for executor in trader._pool:
            executor.join(timeout=10.0)
            # Lumibot's executor loop re-creates its scheduler once after stop_all removed it
            if executor.scheduler is not None and executor.scheduler.running:
                executor.scheduler.shutdown(wait=False)
        _drop_file_handlers(folder)


def _drop_file_handlers(folder: Path) -> None:
    """Lumibot's Trader adds a file handler to its loggers; the test's folder goes away."""
    import logging

    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)]:
        for handler in list(getattr(logger, "handlers", [])):
            if str(getattr(handler, "baseFilename", "")).startswith(str(folder)):
                logger.removeHandler(handler)
                handler.close()


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not seen within {timeout:g}s")


def _spec(**fields: Any) -> StrategySpec:
    return StrategySpec.model_validate({"name": "live_test", "timeframe": "1min", **fields})


def _working(fake: Any) -> list[dict[str, Any]]:
    """Working orders, an OCO's working legs one by one."""
    with fake.lock:
        out = []
        for o in fake.orders.values():
            parts = o["leg"] if o["class"] == "oco" else [o]
            out += [dict(p) for p in parts if p["status"] in ("open", "pending")]
        return out


def _states(fake: Any) -> list[tuple[str, float, str]]:
    """(type, quantity, status) of every order, an OCO's legs one by one, sorted."""
    with fake.lock:
        parts = [p for o in fake.orders.values() for p in (o["leg"] if o["class"] == "oco" else [o])]
        return sorted((p["type"], p["quantity"], p["status"]) for p in parts)


def _minute_bars(start: str, closes: Any, half_range: float = 0.5) -> pd.DataFrame:
    """One-minute bars from ``start`` (New York) closing at ``closes``, high and low ``half_range`` either
    side: the broker's bars a live decision reads, built by the test."""
    close = np.asarray(closes, dtype=float)
    index = pd.date_range(start, periods=len(close), freq="1min", tz=NY)
    return pd.DataFrame(
        {
            "open": close,
            "high": close + half_range,
            "low": close - half_range,
            "close": close,
            "volume": np.ones(len(close)),
        },
        index=index,
    )


def _decide_on(
    strategy: Any, frame: pd.DataFrame, clock: list[int], stamp: str, *, symbol: str = "SPY", kind: str | None = None
) -> None:
    """Decide on the bar of ``frame`` starting at ``stamp`` (New York; its close) at the next bar's open,
    with the strategy's clock set there: what an iteration does once that bar has closed."""
    bars = frame[frame.index <= pd.Timestamp(stamp, tz=NY)]
    market = _live.frame_market(symbol, bars, intraday=True, kind=kind)
    clock[0] = int(market.bars.ts[-1]) + 60_000_000_000
    with strategy.live_lock:
        strategy._live_sync()
        strategy._live_decide(market, len(market.bars) - 1)


def _posts(fake: Any) -> list[dict[str, str]]:
    return [r.form() for r in fake.requests_to("POST", r"/accounts/[^/]+/orders$")]


def _tl_positions(fake: Any) -> dict[str, float]:
    with fake.lock:
        out: dict[str, float] = {}
        for p in fake.books[1].positions.values():
            name = fake.instruments[p["tradableInstrumentId"]].name
            out[name] = round(out.get(name, 0.0) + (p["qty"] if p["side"] == "buy" else -p["qty"]), 8)
        return out


# ----------------------------------------------------------------------------------------- Tradier


def _levels(fake: Any) -> list[tuple[str, float, float]]:
    """The working orders as (type, quantity, price), sorted."""
    return sorted((o["type"], o["quantity"], o.get("stop_price") or o["price"]) for o in _working(fake))


def test_stock_spec_holds_its_bracket_at_tradier_then_a_partial_and_the_target_fill(
    tradier: tuple[Any, Callable[[], Any]], live_env: Path
) -> None:
    fake, make_broker = tradier
    spec = _spec(
        instrument={"type": "stock", "symbol": "SPY"},
        entry={"long": "close > 0"},
        exits={
            "stop_loss": {"pct": 0.01},
            "take_profit": {"pct": 0.01},
            "partial_take_profits": [{"pct": 0.005, "fraction": 0.5}],
        },
        sizing={"mode": "fixed", "quantity": 3, "max_trades_per_day": 1},
    )
    strategy = live_strategy(make_broker(), spec, name="live-spy", sleeptime="1S")
    with trading(strategy, live_env):
        _wait(lambda: fake.positions.get("SPY", {}).get("quantity") == 3, "the market buy")
        # levels from the actual fill at the ask (590.13), on the cent grid on their triggering side
        first = _wait(lambda: [lv for lv in [_levels(fake)] if len(lv) == 3], "the resting exits")[0]
        assert first == [
            ("limit", 1.0, 593.09),  # the partial: 590.13 * 1.005 = 593.0807, up; half of 3, whole shares
            ("limit", 3.0, 596.04),  # the target: 590.13 * 1.01 = 596.0313, up
            ("stop", 3.0, 584.22),  # the stop: 590.13 * 0.99 = 584.2287, down
        ]
        (bracket,) = [o for o in fake.orders.values() if o["class"] == "oco"]  # stop and target: one OCO
        assert sorted((leg["type"], leg["side"], leg["duration"]) for leg in bracket["leg"]) == [
            ("limit", "sell", "gtc"),
            ("stop", "sell", "gtc"),
        ]
        fake.set_quote("SPY", 594.00, 594.02)  # through the partial only
        _wait(lambda: fake.positions.get("SPY", {}).get("quantity") == 2, "the partial's fill")
        # a new bracket closes what is left (Tradier cannot change an order's quantity)
        _wait(lambda: _levels(fake) == [("limit", 2.0, 596.04), ("stop", 2.0, 584.22)], "the exits for 2")
        fake.set_quote("SPY", 600.00, 600.02)  # through the target: the OCO cancels the stop itself
        _wait(
            lambda: "SPY" not in fake.positions and not _working(fake), "the target's fill, the stop's cancel"
        )
    posts = _posts(fake)
    entry = posts[0]
    assert (entry["class"], entry["type"], entry["side"], float(entry["quantity"])) == (
        "equity",
        "market",
        "buy",
        3,
    )
    assert sorted(f["class"] for f in posts[1:]) == ["equity", "oco", "oco"]  # the partial, two brackets
    assert all(f["tag"].startswith("ssf-") for f in posts)  # every order carries the adapter's client id
    assert _states(fake) == [
        ("limit", 1.0, "filled"),
        ("limit", 2.0, "filled"),
        ("limit", 3.0, "canceled"),
        ("market", 3.0, "filled"),
        ("stop", 2.0, "canceled"),
        ("stop", 3.0, "canceled"),
    ]
    assert fake.realized_today == pytest.approx((594.00 - 590.13) + 2 * (600.00 - 590.13))


def test_a_restart_takes_over_the_position_and_keeps_the_bracket_held_at_the_broker(
    tradier: tuple[Any, Callable[[], Any]], live_env: Path
) -> None:
    fake, make_broker = tradier
    spec = _spec(
        instrument={"type": "stock", "symbol": "SPY"},
        direction="short",
        entry={"short": "close > 0"},
        exits={"stop_loss": {"points": 2.0}, "take_profit": {"points": 5.0}},
        sizing={"mode": "fixed", "quantity": 4, "max_trades_per_day": 1},
    )
    with trading(live_strategy(make_broker(), spec, name="live-spy-short", sleeptime="1S"), live_env):
        _wait(lambda: fake.positions.get("SPY", {}).get("quantity") == -4, "the short sale at the bid")
        first = _wait(lambda: [w for w in [_working(fake)] if len(w) == 2], "the resting exits")[0]
    # the first run's bracket still works at the broker; a restarted run owns the position from now on
    assert sorted((o["type"], o["side"], o.get("stop_price") or o.get("price")) for o in first) == [
        ("limit", "buy_to_cover", 585.11),  # 590.11 - 5 points
        ("stop", "buy_to_cover", 592.11),  # 590.11 + 2 points
    ]
    with trading(live_strategy(make_broker(), spec, name="live-spy-short", sleeptime="1S"), live_env):
        time.sleep(1.5)  # a few iterations of the restarted run
        # the same levels from the broker's average price: the bracket is kept, nothing new is sent
        assert {o["id"] for o in _working(fake)} == {o["id"] for o in first}
        assert len(_posts(fake)) == 2
        fake.set_quote("SPY", 592.20, 592.22)  # through the stop
        _wait(lambda: "SPY" not in fake.positions and not _working(fake), "the stop's fill")
    assert _states(fake) == [("limit", 4.0, "canceled"), ("market", 4.0, "filled"), ("stop", 4.0, "filled")]
    assert fake.realized_today == pytest.approx(-4 * (592.22 - 590.11))
    assert "keeping the bracket held at the broker" in (live_env / "lumibot.log").read_text()


def test_option_spread_from_the_chain_then_a_restart_closes_it_on_its_close_marks(
    tradier: tuple[Any, Callable[[], Any]], live_env: Path
) -> None:
    fake, make_broker = tradier
    fake.all_hours = True  # the latest bar is the minute just closed, so it is today's (rule 2)
    now = dt.datetime.now(NY)
    past_midnight = (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    if past_midnight < 65:  # until today's first bar has closed, the latest bar is yesterday's
        time.sleep(65 - past_midnight)
    today = dt.datetime.now(NY).date()
    fake.expirations["SPY"] = [(today + dt.timedelta(days=d)).isoformat() for d in (1, 4, 11)]
    spec = _spec(
        session="extended",
        instrument={
            "type": "option",
            "symbol": "SPY",
            "legs": [
                {"right": "call", "side": "buy", "dte": 3, "select": "offset", "value": -10.0},
                {"right": "call", "side": "sell", "dte": 3, "select": "offset", "value": 10.0},
            ],
        },
        entry={"long": "close > 0"},
        exits={"stop_loss": {"pct": 0.5}, "take_profit": {"pct": 0.5}},
        sizing={"mode": "fixed", "quantity": 2, "max_trades_per_day": 1},
    )
    expiry = today + dt.timedelta(days=4)  # the first expiry at least 3 days out
    long_leg = fake.occ("SPY", expiry.isoformat(), "C", 580)  # 590.12 - 10, nearest strike
    short_leg = fake.occ("SPY", expiry.isoformat(), "C", 600)

    broker = make_broker()
    broker.data_source._delay = None  # the fake serves real-time bars; Lumibot assumes the sandbox's 15 min
    with trading(live_strategy(broker, spec, name="live-spread", sleeptime="1S"), live_env):
        _wait(lambda: len(fake.positions) == 2, "the spread's fill")
        _wait(lambda: len(_posts(fake)) == 1 and not _working(fake), "the entry to settle")
    assert {s: p["quantity"] for s, p in fake.positions.items()} == {long_leg: 2.0, short_leg: -2.0}
    (entry,) = _posts(fake)
    assert entry["class"] == "multileg" and entry["type"] == "market"
    assert (entry["option_symbol[0]"], entry["side[0]"], float(entry["quantity[0]"])) == (
        long_leg,
        "buy_to_open",
        2,
    )
    assert (entry["option_symbol[1]"], entry["side[1]"], float(entry["quantity[1]"])) == (
        short_leg,
        "sell_to_open",
        2,
    )

    # SPY rallies while the deployment is down; the restarted strategy takes the spread over at its cost
    # basis (a debit of 11.87 - 1.65) and closes it: its close mark (~32.1 - 11.7) is past the +50% target
    fake.set_quote("SPY", 610.00, 610.02)
    broker = make_broker()
    broker.data_source._delay = None
    with trading(live_strategy(broker, spec, name="live-spread", sleeptime="1S"), live_env):
        _wait(lambda: not fake.positions, "the spread's exit")
    exit_ = _posts(fake)[1]
    assert exit_["class"] == "multileg"
    assert {exit_["option_symbol[0]"]: exit_["side[0]"], exit_["option_symbol[1]"]: exit_["side[1]"]} == {
        long_leg: "sell_to_close",
        short_leg: "buy_to_close",
    }
    assert len(_posts(fake)) == 2 and fake.realized_today > 0
    log = (live_env / "lumibot.log").read_text()
    assert "found at the broker" in log and "take_profit exit of 2" in log


def test_decisions_bar_by_bar_follow_the_window_size_trail_the_stop_and_end_at_the_hold_time(
    tradier: tuple[Any, Callable[[], Any]],
) -> None:
    """The decision steps driven bar by bar on hand-made bars (with the strategy's clock at each next
    bar's open), orders and fills through Lumibot's Tradier broker and the fake."""
    fake, make_broker = tradier
    spec = _spec(
        instrument={"type": "stock", "symbol": "SPY"},
        entry={"long": "close > 0", "window_start": "10:00"},
        exits={"trailing": {"pct": 0.01}, "max_hold_minutes": 3},
        sizing={"mode": "pct_equity", "pct_equity": 0.1},
    )
    frame = _minute_bars("2026-11-30 09:58", [590.0, 590.2, 590.4, 600.0, 599.0, 598.0])
    clock = [0]
    strategy = live_strategy(make_broker(), spec, name="live-bars", clock=lambda: clock[0], fill_wait=10.0)

    def decide(minute: str) -> None:
        _decide_on(strategy, frame, clock, f"2026-11-30 {minute}")

    decide("09:58")
    decide("09:59")  # both before the entry window: nothing
    assert _posts(fake) == []
    decide("10:00")  # 10% of 100,000 at 590.12 (the last price): 16 shares, filled at the ask 590.13
    assert fake.positions["SPY"]["quantity"] == 16
    _wait(lambda: _levels(fake) == [("stop", 16.0, 584.22)], "the trailing stop 1% under the fill")
    decide("10:01")  # a high of 600.50: the stop rises to 594.49 (594.495, down), moved in place
    _wait(lambda: _levels(fake) == [("stop", 16.0, 594.49)], "the raised stop")
    (moved,) = fake.requests_to("PUT", r"/orders/\d+$")
    assert moved.form()["stop"] == "594.49"
    decide("10:02")  # a lower high: the stop stays
    assert _levels(fake) == [("stop", 16.0, 594.49)]
    decide("10:03")  # the next open is 3 minutes after the entry's: the time exit, at market
    _wait(lambda: "SPY" not in fake.positions and not _working(fake), "the time exit")
    sides = [(f["type"], f["side"], f.get("stop")) for f in _posts(fake)]
    assert sides == [("market", "buy", None), ("stop", "sell", "584.22"), ("market", "sell", None)]
    states = [o["status"] for o in fake.orders.values()]
    assert states == ["filled", "canceled", "filled"]


def test_a_restart_never_loosens_a_stop_an_earlier_run_trailed_up(
    tradier: tuple[Any, Callable[[], Any]],
) -> None:
    """The trailing stop was raised before the crash; the restarted run computes its levels from the entry
    again (594.49 would become 584.22) but keeps the tighter stop the broker holds."""
    fake, make_broker = tradier
    spec = _spec(
        instrument={"type": "stock", "symbol": "SPY"},
        entry={"long": "close > 0"},
        exits={"trailing": {"pct": 0.01}},
        sizing={"mode": "fixed", "quantity": 16},
    )
    frame = _minute_bars("2026-11-30 10:00", [590.0, 600.0, 599.0])
    clock = [0]

    def decide(strategy: Any, minute: str) -> None:
        _decide_on(strategy, frame, clock, f"2026-11-30 {minute}")

    first = live_strategy(make_broker(), spec, name="live-trail", clock=lambda: clock[0], fill_wait=10.0)
    decide(first, "10:00")
    _wait(lambda: _levels(fake) == [("stop", 16.0, 584.22)], "the trailing stop 1% under the fill")
    decide(first, "10:01")  # a high of 600.50: the stop rises to 594.49
    _wait(lambda: _levels(fake) == [("stop", 16.0, 594.49)], "the raised stop")

    broker = make_broker()  # the restarted run: a new broker and strategy on the same account
    second = live_strategy(broker, spec, name="live-trail", clock=lambda: clock[0], fill_wait=10.0)
    broker._set_initial_positions(second)
    with second.live_lock:
        second._live_reconcile()
    assert _levels(fake) == [("stop", 16.0, 594.49)] and len(_posts(fake)) == 2  # kept: nothing sent
    assert [(r.kind, r.price) for r in second.resting] == [("stop", 594.49)]


# ----------------------------------------------------------------------------------------- TradeLocker


def test_forex_spec_sizes_by_risk_and_closes_at_the_target_held_on_its_tradelocker_position(
    tradelocker: tuple[Any, Any, Any], live_env: Path
) -> None:
    fake, _, broker = tradelocker
    spec = _spec(
        instrument={"type": "forex", "symbol": "EURUSD"},
        entry={"long": "close > 0"},
        exits={"stop_loss": {"pips": 20}, "take_profit": {"pips": 20}},
        sizing={"mode": "risk", "risk_pct": 0.01, "max_trades_per_day": 1},
    )
    with trading(live_strategy(broker, spec, name="live-fx", sleeptime="1S"), live_env):
        # 1% of 50,000 at risk over 20 pips of 10 USD a lot: 2.5 lots, bought at the ask (1.08500)
        _wait(lambda: _tl_positions(fake).get("EURUSD") == 2.5, "the risk-sized buy")
        # the stop and the target are the position's own (a hedging account would open a second position
        # from a resting opposite order): 20 pips either side of the fill at 1.08500
        patch = _wait(lambda: fake.requests_to("PATCH", r"/trade/positions/\d+$"), "the position's exits")
        assert patch[0].json() == {"stopLoss": 1.083, "takeProfit": 1.087}
        time.sleep(1.5)  # a few iterations: nothing more is sent
        assert fake.order_count() == 1 and _tl_positions(fake) == {"EURUSD": 2.5}
        assert len(fake.requests_to("PATCH", r"/trade/positions/\d+$")) == 1
        fake.set_quote("EURUSD", 1.08705, 1.08715)  # the bid reaches the 1.08700 target
        _wait(lambda: not _tl_positions(fake), "the close at the target")
    book = fake.books[1]
    assert book.realized_today == pytest.approx(2.5 * 100_000 * (1.08705 - 1.08500))
    assert fake.order_count() == 1  # the close is the position's take-profit, not a new order
    with fake.lock:
        assert sorted((o["_origin"], o["status"]) for o in book.orders.values()) == [
            ("client", "Filled"),
            ("sl", "Cancelled"),
            ("tp", "Filled"),
        ]


def test_forex_partial_target_is_watched_while_the_positions_own_bracket_follows_it_on_tradelocker(
    tradelocker: tuple[Any, Any, Any], live_env: Path
) -> None:
    fake, _, broker = tradelocker
    spec = _spec(
        instrument={"type": "forex", "symbol": "EURUSD"},
        entry={"long": "close > 0"},
        exits={
            "stop_loss": {"pips": 20},
            "take_profit": {"pips": 40},
            "partial_take_profits": [{"pct": 0.001, "fraction": 0.5}],
        },
        sizing={"mode": "fixed", "quantity": 0.2, "max_trades_per_day": 1},
    )
    with trading(live_strategy(broker, spec, name="live-fx-partial", sleeptime="1S"), live_env):
        _wait(lambda: _tl_positions(fake).get("EURUSD") == 0.2, "the buy at 1.08500")
        patch = _wait(lambda: fake.requests_to("PATCH", r"/trade/positions/\d+$"), "the position's exits")
        assert patch[0].json() == {"stopLoss": 1.083, "takeProfit": 1.089}
        fake.set_quote("EURUSD", 1.08620, 1.08630)  # mid 1.08625, past the partial at 1.085 * 1.001
        _wait(lambda: _tl_positions(fake).get("EURUSD") == 0.1, "the partial close")
        time.sleep(1.5)  # a few iterations: the position's bracket follows it, nothing is re-sent
        assert len(fake.requests_to("PATCH", r"/trade/positions/\d+$")) == 1
        fake.set_quote("EURUSD", 1.08910, 1.08920)  # the bid reaches the take-profit
        _wait(lambda: not _tl_positions(fake), "the close at the target")
    book = fake.books[1]
    assert book.realized_today == pytest.approx(
        0.1 * 100_000 * (1.0862 - 1.085) + 0.1 * 100_000 * (1.0891 - 1.085)
    )
    assert fake.order_count() == 1  # the partial is a position close, the target the position's own


def test_forex_reversal_closes_the_short_found_at_the_broker_then_buys(
    tradelocker: tuple[Any, Any, Any], live_env: Path
) -> None:
    from brokers import OrderRequest

    fake, adapter, broker = tradelocker
    adapter.place_order(OrderRequest.single("EURUSD", "sell", 10_000, asset_class="forex"))
    assert _tl_positions(fake) == {"EURUSD": -0.1}
    spec = _spec(
        instrument={"type": "forex", "symbol": "EURUSD"},
        direction="both",
        entry={"long": "close > 0", "short": "close < 0"},
        sizing={"mode": "fixed", "quantity": 0.2},
    )
    with trading(live_strategy(broker, spec, name="live-fx-rev", sleeptime="1S"), live_env):
        _wait(lambda: _tl_positions(fake) == {"EURUSD": 0.2}, "the reversal to long")
    with fake.lock:
        sides = [o["side"] for o in fake.books[1].orders.values() if o["_origin"] in ("client", "close")]
    assert sides == ["sell", "buy", "buy"]  # the test's short, its close, the new long
    log = (live_env / "lumibot.log").read_text()
    assert "found at the broker" in log and "reverse exit of 0.1 EURUSD" in log


def test_end_of_day_flat_closes_what_is_held_and_opens_nothing(
    tradelocker: tuple[Any, Any, Any], live_env: Path
) -> None:
    from brokers import OrderRequest

    fake, adapter, broker = tradelocker
    adapter.place_order(OrderRequest.single("EURUSD", "buy", 30_000, asset_class="forex"))
    spec = _spec(
        instrument={"type": "forex", "symbol": "EURUSD"},
        entry={"long": "close > 0"},
        exits={"eod_flat_time": "17:00"},  # the forex day's first minute: every bar is past it
        sizing={"mode": "fixed", "quantity": 0.1},
    )
    strategy = live_strategy(broker, spec, name="live-fx-flat", sleeptime="1S")
    with trading(strategy, live_env):
        _wait(lambda: not _tl_positions(fake), "the end-of-day close")
        time.sleep(1.5)  # more iterations: no entry past the flat time
        assert not _tl_positions(fake) and fake.order_count() == 1
    assert "eod_flat exit of 0.3 EURUSD" in (live_env / "lumibot.log").read_text()


# ----------------------------------------------------------------------------------------- no broker


def test_what_live_mode_refuses_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_ENABLE_FUTURES", raising=False)
    future = _spec(instrument={"type": "future", "symbol": "MES"}, entry={"long": "close > 0"})
    assert "set FARM_ENABLE_FUTURES=1" in (live_problem(future) or "")
    staged = _spec(
        instrument={
            "type": "option",
            "symbol": "SPY",
            "legs": [{"right": "call", "dte": 0}],
            "staged": {"underlying_move_pct": 0.002, "width": 1.0},
        },
        entry={"long": "close > 0"},
    )
    assert live_problem(staged) is None  # staged conversions trade live (tests/brokers/live/test_staged.py)
    stock = _spec(instrument={"type": "stock", "symbol": "SPY"}, entry={"long": "close > 0"})
    assert live_problem(stock) is None and live_problem(stock, "tradier") is None
    assert "stock instruments on tradelocker (tradelocker trades forex here)" in (
        live_problem(stock, "tradelocker") or ""
    )
    with pytest.raises(UnsupportedLive, match="futures"):
        live_strategy("tradier", future, name="x")
    monkeypatch.setenv("FARM_ENABLE_FUTURES", "1")
    assert live_problem(future, "tradier") is None
    assert "future instruments on tradelocker" in (live_problem(future, "tradelocker") or "")
    monkeypatch.delenv("FARM_ENABLE_FUTURES")

    from brokers.paper import strategy_problem

    assert "futures" in (strategy_problem(future.model_dump(mode="json")) or "")
    assert strategy_problem(stock.model_dump(mode="json")) is None


def test_session_ends_ticks_and_hourly_windows_follow_the_store() -> None:
    spec = _spec(instrument={"type": "stock", "symbol": "SPY"}, entry={"long": "close > 0"})

    def ns(text: str) -> int:
        return int(pd.Timestamp(text, tz=NY).tz_convert("UTC").value)

    # 2026-11-27 is the half day after Thanksgiving: the session ends at 13:00
    assert _live.is_last_bar(spec, ns("2026-11-27 12:59"), 1)
    assert not _live.is_last_bar(spec, ns("2026-11-27 12:58"), 1)
    assert _live.is_last_bar(spec, ns("2026-11-30 15:59"), 1)
    assert not _live.is_last_bar(spec, ns("2026-11-30 14:30"), 60)
    assert _live.is_last_bar(spec, ns("2026-11-30 15:30"), 60)
    assert _live.round_to_tick(584.2287, 0.01, up=False) == 584.22
    assert _live.round_to_tick(596.0313, 0.01, up=True) == 596.04
    assert _live.round_to_tick(596.04, 0.01, up=True) == 596.04  # already on the grid
    assert _live.round_to_tick(1.087004, 0.00001, up=True) == 1.08701

    hourly = _spec(instrument={"type": "stock", "symbol": "SPY"}, timeframe="1h", entry={"long": "close > 0"})
    index = pd.date_range("2026-11-30 09:30", "2026-11-30 11:15", freq="15min", tz=NY)
    frame = pd.DataFrame(
        {
            "open": np.arange(len(index), dtype=float),
            "high": np.arange(len(index), dtype=float) + 0.5,
            "low": np.arange(len(index), dtype=float) - 0.5,
            "close": np.arange(len(index), dtype=float) + 0.25,
            "volume": np.ones(len(index)),
        },
        index=index,
    )
    bars = _live.closed_bars(frame, hourly, pd.Timestamp("2026-11-30 11:31", tz=NY))
    # windows from 09:30 (the store's anchor), only closed ones: 09:30 and 10:30
    assert [t.strftime("%H:%M") for t in bars.index.tz_convert(NY)] == ["09:30", "10:30"]
    assert bars.iloc[0].to_dict() == {"open": 0.0, "high": 3.5, "low": -0.5, "close": 3.25, "volume": 4.0}
