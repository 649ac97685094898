"""A futures spec traded live on the fake Tradier (``FARM_ENABLE_FUTURES=1``): the continuous MES mapped to
the listed contract with the most volume in the last session, quantity in contracts, value = price x 5,
orders ``class=future`` on ``/MESZ26`` through the adapter (the deployments' one Lumibot broker), the stop
and target as one OCO on the 0.25 tick grid, and the next day's entry on the new front month after the
volume has rolled. Decisions are driven bar by bar with the strategy's clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from brokers.live import bars as live_data
from brokers.live import live_strategy
from spec_space.models import StrategySpec
from tests.evaluator.test_spec_strategy_live import (
    NY,
    _decide_on,
    _minute_bars,
    _posts,
    _wait,
    _working,
    fakes,
)


@pytest.fixture
def tradier_futures(live_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """The fake Tradier with two MES contracts, and the Lumibot broker of a futures deployment pointed at it
    (the same :class:`TradierBroker` every Tradier deployment runs, its adapter with futures on)."""
    from brokers.lumibot_tradier import TradierBroker
    from brokers.tradier import TradierAdapter

    monkeypatch.setenv("FARM_ENABLE_FUTURES", "1")
    fake = fakes.FakeTradier()
    fake.start()
    fake.set_quote("/MESZ26", 6000.00, 6000.25, 6000.25)
    fake.set_quote("/MESH27", 6050.00, 6050.25, 6050.25)
    fake.session_volumes.update({"/MESZ26": 1_200_000, "/MESH27": 300_000})
    adapter = TradierAdapter(
        fake.token, fake.account_id, base_url=fake.base_url, enable_futures=True, submit_settle_seconds=0.0
    )
    broker = TradierBroker(adapter, paper=True, polling_interval=0.2, market="24/7", data_delay=0)
    try:
        yield fake, broker
    finally:
        broker.close()
        broker.data_source.shutdown()
        fake.stop()


def test_mes_trades_the_front_contract_in_contracts_then_the_next_one_after_the_roll(
    tradier_futures: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    fake, broker = tradier_futures
    spec = StrategySpec.model_validate(
        {
            "name": "mes_live",
            "timeframe": "1min",
            "instrument": {"type": "future", "symbol": "MES"},
            "entry": {"long": "close > 0"},
            "exits": {"stop_loss": {"points": 4.0}, "take_profit": {"points": 8.0}},
            "sizing": {"mode": "fixed", "quantity": 2, "max_trades_per_day": 1},
        }
    )
    clock = [0]
    strategy = live_strategy(broker, spec, name="live-mes", clock=lambda: clock[0], fill_wait=10.0)
    frame = pd.concat(
        [
            _minute_bars("2026-11-30 10:00", [6000.0, 6001.0, 6002.0]),
            _minute_bars("2026-12-01 10:00", [6050.0, 6051.0]),
        ]
    )

    def decide(stamp: str) -> None:
        _decide_on(strategy, frame, clock, stamp, symbol="MES", kind="future")

    decide("2026-11-30 10:00")  # MESZ26 traded 4x MESH27's volume yesterday: it is the front month
    _wait(lambda: fake.positions.get("/MESZ26", {}).get("quantity") == 2, "the buy of 2 MESZ26 at the ask")
    assert str(strategy.plan.underlying.symbol) == "MESZ26"
    # the levels from the fill (6000.25) in points, on the 0.25 grid; one contract is worth 5 x the price
    _wait(
        lambda: (
            sorted((o["type"], o["quantity"], o.get("stop_price") or o["price"]) for o in _working(fake))
            == [("limit", 2.0, 6008.25), ("stop", 2.0, 5996.25)]
        ),
        "the bracket's stop and target",
    )
    (bracket,) = [o for o in fake.orders.values() if o["class"] == "oco"]  # one OCO on the contract
    assert sorted((leg["symbol"], leg["type"], leg["side"], leg["duration"]) for leg in bracket["leg"]) == [
        ("/MESZ26", "limit", "sell", "gtc"),
        ("/MESZ26", "stop", "sell", "gtc"),
    ]
    assert strategy.v_entry == pytest.approx(5 * 6000.25)
    entry = _posts(fake)[0]
    assert (entry["class"], entry["symbol"], entry["side"], entry["type"], float(entry["quantity"])) == (
        "future",
        "/MESZ26",
        "buy",
        "market",
        2,
    )
    fake.set_quote("/MESZ26", 6008.50, 6008.75)  # through the target
    _wait(lambda: "/MESZ26" not in fake.positions, "the target's fill")
    _wait(
        lambda: any(o.is_filled() for o, _, _ in strategy.live_orders.values()), "Lumibot's poll of the fill"
    )
    _wait(lambda: not _working(fake), "the OCO's cancel of the stop")
    decide("2026-11-30 10:01")  # the strategy sees the bracket's fill: flat
    assert fake.realized_today == pytest.approx(2 * 5 * (6008.50 - 6000.25))
    decide("2026-11-30 10:02")  # one trade a day
    assert len([p for p in _posts(fake) if p.get("type") == "market"]) == 1

    fake.session_volumes.update({"/MESZ26": 200_000, "/MESH27": 1_500_000})  # the volume has rolled
    decide("2026-12-01 10:00")  # a new day, flat: the strategy moves to MESH27 and trades it
    _wait(lambda: fake.positions.get("/MESH27", {}).get("quantity") == 2, "the buy of 2 MESH27")
    assert str(strategy.plan.underlying.symbol) == "MESH27" and "/MESZ26" not in fake.positions
    assert "rolling from MESZ26 to MESH27" in caplog.text


def test_a_restart_keeps_trading_the_held_contract_after_the_volume_rolled(
    tradier_futures: tuple[Any, Any],
) -> None:
    import datetime as dt

    from brokers import OrderRequest

    fake, broker = tradier_futures
    broker.adapter.place_order(OrderRequest.single("MESZ26", "sell", 1, asset_class="future", intent="t"))
    fake.session_volumes.update({"/MESZ26": 100_000, "/MESH27": 2_000_000})  # MESH27 is the front now
    spec = StrategySpec.model_validate(
        {
            "name": "mes_restart",
            "timeframe": "1min",
            "instrument": {"type": "future", "symbol": "MES"},
            "direction": "short",
            "entry": {"short": "close > 0"},
            "sizing": {"mode": "fixed", "quantity": 1},
        }
    )
    strategy = live_strategy(broker, spec, name="live-mes-restart", fill_wait=10.0)
    _wait(lambda: strategy.get_positions(), "Lumibot's sync of the broker's positions")
    with strategy.live_lock:
        strategy._live_front(dt.date(2026, 12, 10))
        assert str(strategy.plan.underlying.symbol) == "MESZ26"  # held: kept until flat
        strategy._live_reconcile()
    assert (strategy.direction, strategy.qty, strategy.pos_mult[0]) == (-1, 1.0, 5.0)
    # cost basis 6000.00 a point (the short's fill at the bid), not the price x 5
    assert strategy.v_entry == pytest.approx(-5 * 6000.00)
    # a futures position never rides into its contract's last trading day (the third Friday)
    assert not strategy._live_contract_expiring(dt.date(2026, 12, 17))
    assert strategy._live_contract_expiring(dt.date(2026, 12, 18))


def test_futures_sessions_bars_and_ticks() -> None:
    spec = StrategySpec.model_validate(
        {
            "name": "mes",
            "timeframe": "5min",
            "instrument": {"type": "future", "symbol": "MES"},
            "entry": {"long": "close > 0"},
        }
    )
    extended = spec.model_copy(update={"session": "extended"})

    def ns(text: str) -> int:
        return int(pd.Timestamp(text, tz=NY).value)

    # regular: the root's day session ends at 16:00 (13:15 on the half day after Thanksgiving)
    assert live_data.is_last_bar(spec, ns("2026-11-30 15:55"), 5)
    assert not live_data.is_last_bar(spec, ns("2026-11-30 15:50"), 5)
    assert live_data.is_last_bar(spec, ns("2026-11-27 13:10"), 5)
    # extended: Globex closes at 17:00; the 18:00 bar opens the next trade date
    assert live_data.is_last_bar(extended, ns("2026-11-30 16:55"), 5)
    assert not live_data.is_last_bar(extended, ns("2026-11-30 18:00"), 5)
    # a regular-session spec reads the day session only, as the store's regular bars
    index = pd.DatetimeIndex(
        [
            pd.Timestamp(t, tz=NY)
            for t in ("2026-11-30 08:00", "2026-11-30 09:30", "2026-11-30 15:55", "2026-11-30 16:00")
        ]
    )
    frame = pd.DataFrame(
        {c: [1.0, 2.0, 3.0, 4.0] for c in ("open", "high", "low", "close", "volume")}, index=index
    )
    kept = live_data.closed_bars(frame, spec, pd.Timestamp("2026-11-30 17:00", tz=NY))
    assert [t.strftime("%H:%M") for t in kept.index.tz_convert(NY)] == ["09:30", "15:55"]
    assert len(live_data.closed_bars(frame, extended, pd.Timestamp("2026-11-30 17:00", tz=NY))) == 4
    # resting orders on the contract's tick grid
    assert live_data.price_tick("future", 6000.0, "MESZ26") == 0.25
    assert live_data.round_to_tick(5996.3, 0.25, up=False) == 5996.25
