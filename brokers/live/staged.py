"""Staged conversions live (``instrument.staged``, fill model rule 11): the long leg trades first; once the
underlying has moved ``underlying_move_pct`` in its favour since the entry, or its premium is up
``premium_up_pct``, the contract ``width`` farther out (same expiry, same right) is sold at the next bar's
open and the position becomes a vertical, as the engines do (``evaluator._kernel`` step 2 and step 7,
``evaluator.lumibot.strategy``):

* the trigger is checked on a decided bar's close, only while no exit is pending, the long leg is priced,
  and the next bar opens in the same session;
* at the next open the sale goes out only if the debit left (the long leg's entry value less the short's
  price net of the modelled half spread) is at least ``min_net_debit`` a share; otherwise the long leg is
  kept and the trigger is not checked again (the backtests' ``converted`` flag);
* the short's contract comes from the broker's chain with the strike exactly ``width`` away, as the
  engines' ``_find_contract``; none at that strike: no conversion this bar.

Live, the converted position's value and levels (``K._levels`` on the net debit) start from the broker's
fill of the short leg, not from a modelled price; the single leg's resting exits are cancelled before the
sale (a spread's levels are checked on its close marks, rule 5).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from brokers.live import assets as live_assets
from brokers.live import bars as live_data
from evaluator import _kernel as K
from evaluator.lumibot._lumibot import Asset
from evaluator.lumibot.core import Action

_EPOCH = dt.date(1970, 1, 1)


class LiveStaging:
    """Mixin of :class:`brokers.live.LiveSpecStrategy`: the staged conversion's trigger, sale and fill."""

    # set by LiveSpecStrategy.configure_live / SpecCore._init_state
    live_convert: live_data.Contract | None

    def _live_stage_trigger(self: Any, i: int, v_close: float, priced: bool, same_session: bool) -> None:
        """Step 7 of rule 11 on bar ``i``'s close: pick the contract to sell at the next open."""
        prm = self.prm
        if (
            prm[K.P_STAGED] <= 0
            or self.direction == 0
            or self.converted
            or self.entry_pending
            or self.pend_exit_frac != 0.0
            or not priced
            or not same_session
            or self.stage_und_ref <= 0.0
            or self.v_entry == 0.0
        ):
            return
        bars = self.plan.market.bars
        close = float(bars.close[i])
        ref = self.stage_und_ref
        move = (close - ref) / ref * (1.0 if self.pos_call[0] else -1.0)
        prem_up = (v_close - self.v_entry) / abs(self.v_entry)
        hit = (prm[K.P_STAGE_UND_PCT] > 0 and move >= prm[K.P_STAGE_UND_PCT]) or (
            prm[K.P_STAGE_PREM_PCT] > 0 and prem_up >= prm[K.P_STAGE_PREM_PCT]
        )
        if not hit:
            return
        width = float(prm[K.P_STAGE_WIDTH])
        strike = self.pos_strike[0] + width if self.pos_call[0] else self.pos_strike[0] - width
        expiry = _EPOCH + dt.timedelta(days=int(self.pos_exp[0]))
        try:
            chain = self._live_chain(expiry, close)
        except Exception as exc:  # no chain: no conversion this bar, the trigger is checked again
            self.log_message(f"no chain to convert on for {expiry}: {exc}", color="yellow")
            return
        self.live_convert = next(
            (c for c in chain if c.call == self.pos_call[0] and abs(c.strike - strike) < 1e-6), None
        )
        if self.live_convert is None:
            self.log_message(f"conversion: no {strike:g} strike in the {expiry} chain", color="yellow")

    def _live_convert_now(self: Any) -> None:
        """Step 2 of rule 11 at the next open: sell the chosen contract if the debit left is large enough."""
        contract, self.live_convert = self.live_convert, None
        if contract is None or self.direction == 0 or self.converted or self.pos_n != 1:
            return
        prm = self.prm
        asset = Asset(
            str(contract.symbol),
            asset_type="option",
            expiration=contract.expiry,
            strike=contract.strike,
            right="CALL" if contract.call else "PUT",
            multiplier=int(K.OPTION_MULT),
        )
        price = self._live_price(asset) or contract.price
        if not math.isfinite(price) or price <= 0:  # no price: try again on the next trigger
            return
        credit = max(price - float(prm[K.P_HALF_SPREAD]), 0.0) * K.OPTION_MULT
        net = self.v_entry - credit
        if net < float(prm[K.P_STAGE_MIN_DEBIT]) * K.OPTION_MULT:
            self.converted = True  # the debit left would be too small: keep the long leg (the engines' rule)
            self.log_message(f"conversion skipped: {contract.ticker} leaves a debit of {net:,.2f} a unit")
            return
        self._live_cancel_resting()
        action = Action("convert", 0, 1, exit_qty=self.qty)
        order = self._live_order(asset, self.qty, "sell_to_open")
        what = f"conversion: sell {self.qty:g} {contract.ticker.removeprefix('O:')}"
        self.live_convert_leg = (asset, contract)
        if self._live_submit([order], action, what=what) is not None:
            self.log_message(what)

    def _live_converted(self: Any, order: Any, action: Action) -> None:
        """The short leg filled: the position is a vertical, valued and levelled from the actual fill."""
        asset, contract = self.live_convert_leg
        price = live_assets.fill_price(order) or contract.price
        prm = self.prm
        self.pos_legs[1] = 1
        self.pos_sign[1] = -1.0
        self.pos_mult[1] = K.OPTION_MULT
        self.pos_asset[1] = asset
        self.pos_units[1] = 1.0
        self.pos_exp[1] = live_data.day_ordinal(contract.expiry)
        self.pos_strike[1] = contract.strike
        self.pos_call[1] = contract.call
        self.pos_ticker[1] = contract.ticker
        self.last_mark[1] = price
        self.pos_n = 2
        self.single = False
        # one more contract a unit pays commission from now on (the engines raise the unit commission too)
        prm[K.P_COMM_UNIT] = self.comm_unit_entry + self.comm_unit_entry / abs(float(self.plan.leg_sign[0]))
        net = self.v_entry - price * K.OPTION_MULT
        self.v_entry = self.v_entry_trade = self.best_v = net
        self.stop_v, self.tp_v = (float(x) for x in K._levels(net, 0.0, prm))
        self.converted = True
        self.log_message(f"converted to {self._live_label()} (net value {net:,.2f} a unit)")

    def _live_convert_failed(self: Any, order: Any, why: Any) -> None:
        """The sale did not fill: the long leg stays, and stays unconverted (the broker said no once)."""
        self.converted = True
        self.log_message(
            f"the conversion order {order} did not fill ({why}); keeping the long leg", color="red"
        )

    def _live_stage_adopted(self: Any, underlying_price: float | None) -> None:
        """A position found at the broker: a spread is already converted; a single long leg measures its
        move from now."""
        self.converted = self.pos_n > 1
        self.stage_und_ref = float(underlying_price or 0.0)
