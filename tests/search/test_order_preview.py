"""search promote --dry-run's first orders: a backtest position as the adapter's order requests."""

from __future__ import annotations

from brokers.base import AssetClass, OrderType, PositionEffect, Side, TimeInForce
from search.order_preview import _order

ROW = {
    "trade_id": 0, "side": "short", "instrument": "O:SPY241224P00590000", "quantity": 25.0,
    "entry_time": "2024-12-24T15:35:00.000000000+0000", "exit_time": "2024-12-24T16:05:00.000000000+0000",
    "exit_reason": "take_profit",
}


def test_an_option_position_opens_and_closes_with_idempotent_client_ids() -> None:
    # a "short" ZRCE position holds a bought put: the trade row's side is the direction of the view, the
    # spec's option leg (side: buy) is bought to open and sold to close
    when, what, entry = _order(ROW, AssetClass.OPTION, "demo-7", entry=True, opens_with_buy=True)
    _, exit_what, exit_ = _order(ROW, AssetClass.OPTION, "demo-7", entry=False, opens_with_buy=True)
    assert f"{when:%Y-%m-%d %H:%M %Z}" == "2024-12-24 10:35 EST" and what == "entry (short)"
    leg = entry.legs[0]
    assert (leg.side, leg.position_effect, leg.quantity, leg.asset_class) == (
        Side.BUY, PositionEffect.OPEN, 25.0, AssetClass.OPTION)
    assert (entry.order_type, entry.time_in_force) == (OrderType.MARKET, TimeInForce.DAY)
    assert exit_.legs[0].side is Side.SELL and exit_.legs[0].position_effect is PositionEffect.CLOSE
    assert exit_what == "exit (take_profit)"
    again = _order(ROW, AssetClass.OPTION, "demo-7", entry=True, opens_with_buy=True)[2]
    assert again.client_order_id == entry.client_order_id != exit_.client_order_id
    assert entry.client_order_id.startswith("ssf-")


def test_a_short_stock_position_sells_to_open() -> None:
    _, _, entry = _order({**ROW, "instrument": "SPY"}, AssetClass.EQUITY, "demo-7", entry=True)
    assert entry.legs[0].side is Side.SELL and entry.legs[0].position_effect is PositionEffect.OPEN


def test_a_forex_position_goes_to_the_adapter_as_the_pair_in_units_of_the_base_currency() -> None:
    # the backtest's 2.37 lots of the store's C:EURUSD are 237,000 EUR of EURUSD at TradeLocker's adapter,
    # the form the live strategy sends (not 2.37 units, which would be a 100,000x smaller order)
    row = {**ROW, "instrument": "C:EURUSD", "quantity": 2.37}
    _, _, entry = _order(row, AssetClass.FOREX, "fx-142", entry=True)
    leg = entry.legs[0]
    assert (leg.symbol, leg.quantity, leg.side, leg.asset_class) == ("EURUSD", 237_000.0, Side.SELL, AssetClass.FOREX)
    gold = _order({**row, "instrument": "C:XAUUSD", "quantity": 0.5}, AssetClass.FOREX, "fx", entry=True)[2]
    assert (gold.legs[0].symbol, gold.legs[0].quantity) == ("XAUUSD", 50.0)  # 100 oz lots
