"""Lumibot, imported once in isolation: no ``.env`` discovery, no startup banner, no error reporting on
import (:func:`evaluator.lumibot.env.lumibot_environment`); every module of the engine (and the live
strategy in :mod:`brokers.live`) takes Lumibot's classes from here."""

from __future__ import annotations

from evaluator.lumibot.env import lumibot_environment

with lumibot_environment():  # no .env discovery, no startup banner, no error reporting on import
    import lumibot.strategies.strategy as _lumibot_strategy_module
    from lumibot.backtesting import BacktestingBroker, PandasDataBacktesting
    from lumibot.backtesting.backtesting_broker import get_futures_margin_requirement
    from lumibot.entities import Asset, Data, TradingFee
    from lumibot.strategies import Strategy
    from lumibot.traders import Trader

# Lumibot snapshots IS_BACKTESTING from the environment when it is imported (true just above) and then
# caches Strategy.get_last_price / get_quote per broker clock tick in any process it believes backtests;
# a live broker's clock never ticks, so a live strategy in this process would read one price forever.
# Backtests are recognised by their broker (IS_BACKTESTING_BROKER) as well, so the snapshot can say "no".
_lumibot_strategy_module.IS_BACKTESTING = False

USD = Asset("USD", asset_type="forex")

__all__ = [
    "USD",
    "Asset",
    "BacktestingBroker",
    "Data",
    "PandasDataBacktesting",
    "Strategy",
    "Trader",
    "TradingFee",
    "get_futures_margin_requirement",
]
