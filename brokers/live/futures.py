"""Futures live (Tradier, ``FARM_ENABLE_FUTURES=1``): which contract the spec's continuous future trades.

A spec names a root (``MES``); the backtests read the store's continuous front month. Live, the strategy
trades one listed contract at a time (``Asset("MESZ26", asset_type="future")``, quantity in contracts,
value = price x the contract multiplier, the backtests' ``plan.mult``), chosen once per trading day by
:meth:`brokers.tradier.TradierAdapter.front_month` (``brokers.futures``: the most volume in the last
complete session, the store's rule a session late). Its bars are that contract's.

Rolling: the strategy moves to a new front contract only while flat, so a position's bars, marks and exits
stay those of the contract it holds (after a restart, a contract of the root found at the broker is the one
traded until flat). A position still held on its contract's last trading day closes at
market (reason ``expiry``) and the next entry trades the new front contract. Where this differs from the
backtest: the store's continuous series switches contracts under an open position (its P&L then carries
the spread between the two contracts); live, no position is carried into another contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from brokers.futures import FuturesContract, contract_of, listed_contracts
from evaluator.lumibot._lumibot import Asset


def future_asset(contract: FuturesContract) -> Any:
    """The Lumibot asset of a listed contract (what :func:`brokers.lumibot_broker.asset_of` makes of the
    adapter's ``MESZ26``, Tradier's ``/MESZ26``)."""
    return Asset(contract.ticker, asset_type="future", multiplier=contract.multiplier)


class LiveFutures:
    """Mixin of :class:`brokers.live.LiveSpecStrategy`: the contract a futures spec trades today."""

    live_contract: FuturesContract | None
    live_front_of_day: tuple[dt.date, FuturesContract] | None

    def _live_front(self: Any, day: dt.date) -> None:
        """Point the plan at the contract to trade on ``day`` (asked of the broker once a day; switched
        only while flat)."""
        spec = self.plan.spec
        if spec.instrument.type != "future":
            return
        if self.live_front_of_day is None or self.live_front_of_day[0] != day:
            contract = self._live_front_month(day)
            if contract is None:
                return
            self.live_front_of_day = (day, contract)
        contract = self.live_front_of_day[1]
        if self.live_contract is None:
            # a restart: a contract of this root already held at the broker is the one traded until flat
            contract = self._live_held_contract(spec.instrument.symbol) or contract
        if contract == self.live_contract:
            return
        if self.live_contract is not None and (self.direction != 0 or self._live_busy()):
            self._live_warn(
                f"front-{day}",
                f"{contract.ticker} is the front month now; {self.live_contract.ticker} is kept while its "
                "position is open",
            )
            return
        if self.live_contract is not None:
            self.log_message(
                f"rolling from {self.live_contract.ticker} to {contract.ticker} (the front month)"
            )
        self.live_contract = contract
        self.plan.underlying = future_asset(contract)

    def _live_front_month(self: Any, day: dt.date) -> FuturesContract | None:
        """The front month by the broker's volumes (the nearest contract on a broker without the futures
        adapter); None when the broker cannot say now and a contract is already in use."""
        root = self.plan.spec.instrument.symbol
        adapter = getattr(self.broker, "adapter", None)  # AdapterBroker's (brokers.lumibot_broker)
        try:
            if adapter is not None and hasattr(adapter, "front_month"):
                return adapter.front_month(root, day)
            return listed_contracts(root, day)[0]
        except Exception as exc:  # no volumes now: keep the contract in use, ask again at the next iteration
            self.log_message(f"no front month for {root}: {exc}", color="yellow")
            return None if self.live_contract is not None else listed_contracts(root, day)[0]

    def _live_held_contract(self: Any, root: str) -> FuturesContract | None:
        try:
            positions = self.get_positions()
        except Exception as exc:  # the reconcile at this iteration will see what is held
            self.log_message(f"no positions from the broker: {exc}", color="yellow")
            return None
        for position in positions:
            asset = position.asset
            if str(asset.asset_type) not in ("future", "cont_future") or not float(position.quantity or 0):
                continue
            try:
                contract = contract_of(str(asset.symbol))
            except ValueError:
                continue
            if contract.root == root.upper():
                return contract
        return None

    def _live_contract_expiring(self: Any, day: dt.date) -> bool:
        """True when the held futures position's contract has its last trading day on ``day`` or before."""
        if self.plan.spec.instrument.type != "future" or self.direction == 0 or self.pos_asset[0] is None:
            return False
        try:
            return contract_of(str(self.pos_asset[0].symbol)).last_trade <= day
        except ValueError:
            return False
