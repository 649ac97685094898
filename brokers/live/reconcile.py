"""The live strategy's reconciliation with its broker: the broker's position is the truth (one found there is
taken over with levels from its average price, one gone is forgotten), and the exits an earlier run left
working are adopted (a bracket held at the broker) or cancelled (anything else)."""

from __future__ import annotations

from typing import Any

from brokers.live import assets as live_assets
from brokers.live import bars as live_data
from evaluator import _kernel as K
from evaluator.lumibot.core import Action, Resting
from evaluator.lumibot.plan import NS_PER_MIN


class BrokerReconcile:
    """Mixed into :class:`brokers.live.strategy.LiveSpecStrategy` (its state and order helpers)."""

    # the strategy's state and helpers (LiveSpecStrategy / SpecCore)
    plan: Any
    live: Any
    single: bool
    resting: list[Resting]
    live_orders: dict[int, tuple[Any, Action, int]]
    broker: Any
    log_message: Any
    get_position: Any
    get_positions: Any
    get_orders: Any
    _live_cancel_resting: Any
    _live_cancel: Any
    _live_place_resting: Any
    _live_price: Any
    _live_label: Any
    _live_value_text: Any
    _wanted_resting: Any
    _stop_distance: Any
    _entry_levels: Any
    _live_stage_adopted: Any

    def _live_reconcile(self) -> None:
        """The broker's position is the truth: adopt one this strategy does not know (a restart, a manual
        trade), forget one that is gone (a resting exit filled unseen, a manual close)."""
        plan = self.plan
        if plan.is_option:
            held = self._live_option_positions()
            units = 0.0 if not held else 1.0
        else:
            position = self.get_position(plan.underlying)
            units = float(position.quantity) if position is not None and position.quantity else 0.0
            held = [(plan.underlying, units, getattr(position, "avg_fill_price", None))] if units else []
        if self.direction == 0 and held:
            self._live_adopt(held)
        elif self.direction != 0 and not held:
            self.log_message(f"{self._live_label()} is flat at the broker; forgetting the position")
            self._live_cancel_resting()
            self.direction, self.qty, self.pos_n = 0, 0.0, 0
        if self.direction != 0:
            self._live_cancel_foreign()
        if self.direction != 0 and not plan.is_option:
            qty = abs(units) / self.pos_units[0]
            if (units > 0) != (self.direction > 0):
                self.log_message(
                    f"the broker holds {units:+g} {self._live_label()}, opposite to this strategy's position"
                )
                self._live_cancel_resting()
                self.direction, self.qty, self.pos_n = 0, 0.0, 0
                self._live_adopt(held)
            elif abs(qty - self.qty) > 1e-9:
                self.log_message(f"the broker holds {units:+g} {self._live_label()}; following it")
                self.qty = qty
                self._live_place_resting()

    def _live_cancel_foreign(self) -> None:
        """Working orders on the position's instruments that this run did not place (an earlier run's exits
        after a restart): the deployment owns the instrument. A bracket held at the broker is adopted (kept,
        moved in place if its levels must change), so the position is never without its stop; other orders
        are cancelled, since a second set of exits would close the position twice."""
        mine = {id(order) for order, _, _ in self.live_orders.values()}
        assets = [self.pos_asset[k] for k in range(self.pos_n)]
        is_bracket = getattr(self.broker, "is_protection", None)
        orders = list(self.get_orders())
        held = getattr(self.broker, "held_protections", None)
        if held is not None and self.single and not self.resting:
            # asked now, not left to the broker's first poll: a restart must not place a second bracket
            known = {str(o.identifier) for o in orders}
            orders += [o for o in held() if str(o.identifier) not in known]
        for order in orders:
            if id(order) in mine or not order.is_active() or order.order_type == "market":
                continue  # an earlier run's market orders fill (or fail) on their own
            if not any(live_assets.same_asset(order.asset, asset) for asset in assets):
                continue
            if self.single and not self.resting and self._live_adoptable(order, is_bracket):
                self._live_adopt_bracket(order)
                continue
            self.log_message(f"cancelling {order}: left working by an earlier run")
            self._live_cancel(order)

    def _live_adoptable(self, order: Any, is_bracket: Any) -> bool:
        """A bracket held at the broker: a protection, or (a stop-only bracket is one plain stop order) a
        stop when this position's bracket is its stop alone."""
        if is_bracket is not None and is_bracket(order):
            return True
        kinds = {kind for kind, *_ in self._wanted_resting() if kind != "partial"}
        return kinds == {"stop"} and str(order.order_type).lower() == "stop"

    def _live_adopt_bracket(self, order: Any) -> None:
        """Track a bracket found at the broker as this run's own (its levels as the broker holds them)."""
        units = round(abs(float(order.quantity)), 8)
        parts = [
            order,
            *(getattr(order, "child_orders", None) or []),
        ]  # an OCO keeps its levels on its children
        stop = next((p.stop_price for p in parts if getattr(p, "stop_price", None) is not None), None)
        target = next((p.limit_price for p in parts if getattr(p, "limit_price", None) is not None), None)
        rests = [(kind, float(p)) for kind, p in (("stop", stop), ("target", target)) if p is not None]
        reason = next((r for k, _, _, r, _ in self._wanted_resting() if k == "stop"), 1)
        kind = "bracket" if len(rests) == 2 else rests[0][0]
        action = Action("resting", 0, 1, reason=reason, rest_kind=kind, partial_index=-1)
        self.live_orders[id(order)] = (order, action, 0)
        self.resting = [Resting(order, k, p, units, reason if k == "stop" else 2, -1) for k, p in rests]
        self.log_message(
            f"keeping the bracket held at the broker: {', '.join(f'{k} {p:g}' for k, p in rests)}"
        )

    def _live_option_positions(self) -> list[tuple[Any, float, float | None]]:
        symbol = str(self.plan.underlying.symbol)
        out = []
        for position in self.get_positions():
            asset = position.asset
            if (
                str(asset.asset_type) == "option"
                and str(asset.symbol) == symbol
                and float(position.quantity or 0)
            ):
                out.append((asset, float(position.quantity), getattr(position, "avg_fill_price", None)))
        return out

    def _live_adopt(self, held: list[tuple[Any, float, float | None]]) -> None:
        """Take over positions found at the broker: levels from their average prices."""
        plan = self.plan
        if plan.is_option:
            size = min(abs(q) for _, q, _ in held)
            for k, (asset, q, avg) in enumerate(held[:4]):
                self.pos_sign[k] = (1.0 if q > 0 else -1.0) * abs(q) / size
                self.pos_mult[k] = K.OPTION_MULT
                self.pos_asset[k] = asset
                self.pos_legs[k] = k
                self.pos_units[k] = abs(q) / size
                self.pos_exp[k] = live_data.day_ordinal(asset.expiration)
                self.pos_strike[k] = float(asset.strike)
                self.pos_call[k] = str(asset.right).upper().startswith("C")
                self.pos_ticker[k] = live_data.Contract(
                    asset.expiration, float(asset.strike), self.pos_call[k], 0.0, str(asset.symbol)
                ).ticker
                self.last_mark[k] = float(avg) if avg else (self._live_price(asset) or 0.0)
            self.pos_n = min(len(held), 4)
            self.qty = self.orig_qty = size
            self.direction = 1
            self._live_stage_adopted(self._live_price(plan.underlying))
        else:
            asset, units, avg = held[0]
            self.direction = 1 if units > 0 else -1
            self.pos_sign[0], self.pos_mult[0], self.pos_asset[0] = float(self.direction), plan.mult, asset
            self.pos_legs[0], self.pos_units[0], self.pos_ticker[0] = -1, plan.lumi_units, ""
            self.pos_n = 1
            self.qty = self.orig_qty = abs(units) / plan.lumi_units
            self.last_mark[0] = float(avg) if avg else (self._live_price(asset) or 0.0)
        self.single = self.pos_n == 1
        v = sum(self.pos_sign[k] * self.pos_mult[k] * self.last_mark[k] for k in range(self.pos_n))
        atr = float(self.plan.sig["atr"][-1]) if self.plan.sig else float("nan")
        stop_dist = self._stop_distance(v, atr, float("nan"))
        self.v_entry = self.v_entry_trade = self.best_v = v
        self.stop_v, self.tp_v = self._entry_levels(v, stop_dist, atr, float("nan"))
        bar_ns = self.live.bar_minutes * NS_PER_MIN
        now = self.live.clock()
        self.entry_bar_ns = self.entry_ts = now // bar_ns * bar_ns  # held from this bar on
        self.next_partial = 0
        self.entry_pending = False
        # a position found at the broker is one of today's trades: a restart must not add one more
        self.live_day = live_data.session_minute_and_date(now, plan.spec.instrument.type)[1]
        self.trades_today = max(self.trades_today, 1)
        self.log_message(
            f"holding {self.direction * self.qty:+g} {self._live_label()} found at the broker; levels from its "
            f"average price ({self._live_value_text(v)})"
        )
        self._live_cancel_foreign()
        self._live_place_resting()
