"""The backtest strategy: a Lumibot ``Strategy`` that runs any StrategySpec under the fill model on the
plan's arrays, with Lumibot's clock, orders, fills, positions and cash (:mod:`evaluator.lumibot`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from evaluator import _kernel as K
from evaluator.lumibot._lumibot import USD, Asset, Data, get_futures_margin_requirement
from evaluator.lumibot.core import Action, Resting, SpecCore, Trade
from evaluator.lumibot.data import contract_frame
from evaluator.lumibot.plan import EPOCH, NS_PER_MIN, Plan


class SpecStrategy(SpecCore):
    """One generic Lumibot strategy that interprets any StrategySpec in a backtest (see
    :mod:`evaluator.lumibot`).

    :func:`evaluator.lumibot.run` builds the plan and calls :meth:`configure` before the backtest starts.
    Decisions read the plan's arrays (the Market); fills, positions, cash and commissions are Lumibot's.
    The state and the numbered steps mirror ``evaluator._kernel.run_kernel`` so the two can be read side
    by side. The live counterpart is :class:`brokers.live.LiveSpecStrategy`.
    """

    # ------------------------------------------------------------------ setup

    def configure(self, plan: Plan, per_unit_fee: float) -> None:
        """Backtest mode: decisions read ``plan``'s arrays, fills come from ``SpecBroker``'s hook."""
        self._init_state(plan)
        self.per_unit_fee = per_unit_fee
        # bookkeeping around Lumibot
        self.closed_upto = plan.i0 - 1
        self.pending_mark: tuple[int, float] | None = None
        self.equity = np.full(len(plan.market.bars.ts), np.nan)
        self.exposure_bars = 0
        self.cur_bar = plan.i0
        self.cash_pending = 0.0  # expected cash change of this open's orders, not yet filled
        self.broker.fill_hook = self._on_fill

    def initialize(self) -> None:
        self.sleeptime = "1M"  # Lumibot pads the data to a one-minute grid; padding minutes are skipped
        if self.plan.continuous:
            # sessions that run into each other (module note 1): one continuous market whose clock
            # visits the window's bars and the final sentinels only (_sleep_to_next_visit)
            self.set_market("24/7")

    # ------------------------------------------------------------------ Lumibot's clock -> bars

    def on_trading_iteration(self) -> None:
        ns = int(round(self.get_datetime().timestamp())) * 1_000_000_000
        self._on_minute(ns)
        if self.plan.continuous:
            self._sleep_to_next_visit(ns)

    def _sleep_to_next_visit(self, ns: int) -> None:
        """On the continuous clock, sleep straight to the next bar or sentinel: Lumibot only moves its clock
        while sleeping (orders are checked at iterations), so the padding minutes, nights and weekends
        in between cost nothing and can fill nothing."""
        visits = self.plan.visits
        k = int(np.searchsorted(visits, ns, side="right"))
        gap = int(visits[k] - ns) // NS_PER_MIN if k < len(visits) else 1
        self.sleeptime = f"{max(gap, 1)}M"

    def _on_minute(self, ns: int) -> None:
        plan = self.plan
        j = plan.bar_at.get(ns)
        if j is None:
            last = plan.sentinel_at.get(ns)
            if last is not None and self.closed_upto < last:
                self._check_unfilled()
                self._finish_bar(last, sentinel=True)
            return
        self._check_unfilled()
        self._record_pending_mark()
        if j - 1 >= plan.i0 and self.closed_upto < j - 1:
            self._finish_bar(j - 1, sentinel=False)
            self._record_pending_mark()
        self._start_bar(j)

    def _record_pending_mark(self) -> None:
        """Equity at a bar's close (rule 10), once that bar's fills are in Lumibot's cash."""
        if self.pending_mark is None:
            return
        i, v_close = self.pending_mark
        self.equity[i] = self.model_cash() + (self.qty * v_close if self.direction != 0 else 0.0)
        self.pending_mark = None

    def _check_unfilled(self) -> None:
        """Market orders fill on the bar they were placed for; one still open means the data disagree."""
        for ident, (action, _) in list(self.actions.items()):
            if action.kind == "resting":
                continue
            del self.actions[ident]
            order = self.broker.get_tracked_order(ident)
            status = getattr(order, "status", "?")
            self.failures.append(
                f"the {action.kind} order placed for bar {action.bar} did not fill there ({status})"
            )
            if order is not None and order.is_active():
                self.broker.cancel_order(order)
        self.cash_pending = 0.0

    # ------------------------------------------------------------------ helpers

    def _leg_prices(self, c: int, pos: int) -> tuple[float, float, float, float]:
        """(open, high, low, last) of contract ``c`` at session position ``pos``, each falling back to the
        last trade within the staleness limit (NaN if none), as the kernel reads them."""
        opt = self.plan.market.options
        p = int(opt.c_off[c]) + pos
        last = float(self.plan.p_last[p])
        o, h, lo = float(opt.p_open[p]), float(opt.p_high[p]), float(opt.p_low[p])
        return (o if o == o else last, h if h == h else last, lo if lo == lo else last, last)

    def _contract_asset(self, c: int, day: int) -> Any:
        """The Lumibot Asset of contract ``c``, its data registered with the data source on first use
        (module note 6)."""
        plan = self.plan
        opt = plan.market.options
        ticker = opt.c_ticker[c]
        asset = self.contract_assets.get(ticker)
        if asset is not None:
            return asset
        expiry = EPOCH + dt.timedelta(days=int(opt.c_exp[c]))
        asset = Asset(
            plan.spec.instrument.symbol,
            asset_type="option",
            expiration=expiry,
            strike=float(opt.c_strike[c]),
            right="CALL" if opt.c_call[c] else "PUT",
            multiplier=int(K.OPTION_MULT),
        )
        frame = contract_frame(plan, day, int(opt.c_exp[c]), float(opt.c_strike[c]), bool(opt.c_call[c]))
        data = Data(asset, frame, timestep="minute", quote=USD)
        source = self.broker.data_source
        data.repair_times_and_fill(source._date_index)
        source._data_store[(asset, USD)] = data
        source._find_asset_in_data_store_cache.clear()
        self.contract_assets[ticker] = asset
        return asset

    def _submit(self, asset: Any, units: float, side: str, action: Action, leg: int, **levels: float) -> Any:
        order = self.create_order(asset, units, side, time_in_force="gtc", **levels)
        order.spec_exit_group = action.kind == "resting"
        self.submit_order(order)
        self.actions[order.identifier] = (action, leg)
        return order

    def model_cash(self) -> float:
        """Lumibot's cash as the fill model counts it (the notional of every position paid in full).

        Lumibot books a future on margin: opening a lot takes its margin from cash, closing it returns the
        margin plus the realised P&L. For each open lot the fill model's cash has instead paid
        ``qty * multiplier * fill price`` and holds no margin, so those two are swapped back here."""
        cash = float(self.cash)
        asset = self.plan.underlying
        if getattr(asset, "asset_type", None) != Asset.AssetType.CONT_FUTURE:
            return cash
        broker = self.broker
        lots = broker._futures_lot_ledgers.get(broker._get_futures_ledger_key(self, asset), [])
        margin = get_futures_margin_requirement(asset)
        mult = float(asset.multiplier)
        return cash + sum(margin * abs(lot["qty"]) - lot["qty"] * mult * lot["price"] for lot in lots)

    def _book(self, amount: float) -> None:
        """Add ``amount`` (negative: a cost) to Lumibot's cash (module note 4)."""
        if amount != 0.0:
            self._set_cash_position(float(self.cash) + amount)

    # ------------------------------------------------------------------ kernel steps 0-5 at bar j's open

    def _start_bar(self, j: int) -> None:
        plan = self.plan
        mkt = plan.market
        bars = mkt.bars
        opt = mkt.options
        prm = self.prm
        self.cur_bar = j
        d = int(bars.day[j])
        pos = j - int(mkt.day_first_bar[d])
        if d != self.cur_day:
            self.cur_day = d
            self.trades_today = 0
            if self.direction != 0 and plan.is_option:  # re-locate held contracts in the new chain
                for k in range(self.pos_n):
                    self.pos_legs[k] = int(
                        K._find_contract(
                            opt.day_c0[d],
                            opt.day_c1[d],
                            self.pos_exp[k],
                            self.pos_strike[k],
                            self.pos_call[k],
                            opt.c_exp,
                            opt.c_strike,
                            opt.c_call,
                        )
                    )
        # the position's value at this open, and whether every leg has a price (known at the open:
        # a contract has one if it trades in this minute or traded within the staleness limit)
        v_open = 0.0
        priced = True
        if self.direction != 0:
            for k in range(self.pos_n):
                if self.pos_legs[k] < 0:
                    if plan.is_option:  # not traded this session: its last known price (a stale exit)
                        priced = False
                        o = self.last_mark[k]
                    else:
                        o = float(bars.open[j])
                else:
                    o, _, _, last = self._leg_prices(self.pos_legs[k], pos)
                    if last != last:  # no trade within the staleness limit: its last known price
                        priced = False
                        o = self.last_mark[k]
                v_open += self.pos_sign[k] * self.pos_mult[k] * o

        # ---- 1. pending exit (signal, reversal, multi-leg level) at this open
        if self.direction != 0 and self.pend_exit_frac > 0.0 and priced:
            frac = self.pend_exit_frac
            exit_qty = min(self.orig_qty * frac if frac < 1.0 else self.qty, self.qty)
            if frac < 1.0:  # a partial closes whole contracts (rule 12)
                exit_qty = float(K._floor_step(exit_qty, prm[K.P_QTY_STEP]))
            if exit_qty > 0.0:
                self._exit_market(j, exit_qty, self.pend_exit_reason, v_open, float(bars.open[j]))
        if priced or self.direction == 0:  # an option without a price yet keeps its exit for the next bar
            self.pend_exit_frac = 0.0

        # ---- 2. pending staged conversion (rule 11)
        if self.direction != 0 and self.pend_convert >= 0 and not self.converted:
            o, _, _, last = self._leg_prices(self.pend_convert, pos)
            if o == o:
                credit = max(o - float(prm[K.P_HALF_SPREAD]), 0.0) * K.OPTION_MULT
                net = self.v_entry - credit
                if net >= float(prm[K.P_STAGE_MIN_DEBIT]) * K.OPTION_MULT:
                    self._convert(j, d, self.pend_convert, o, credit, net)
                else:
                    self.converted = True  # the debit left would be too small: keep the long leg
        self.pend_convert = -1

        # ---- 3. pending entry
        entered = False
        if self.pend_entry != 0 and self.direction == 0 and not (plan.is_option and self.pend_entry_day != d):
            entered = self._enter(j, d, pos)
        self.pend_entry = 0

        # ---- 4. time exits at this open (rule 8); they close even when a leg has no price within the
        # staleness limit, at its last known price (the contract's rows carry it, module note 2)
        if self.direction != 0:
            reason = -1
            if plan.sig["force_flat"][j]:
                reason = 7
            elif (
                prm[K.P_MAX_HOLD_NS] > 0
                and bars.ts[j] - self.entry_ts >= prm[K.P_MAX_HOLD_NS]
                and j != self.entry_bar
            ):
                reason = 6
            elif (
                plan.is_option
                and prm[K.P_CLOSE_BEFORE_EXP] >= 0
                and K.sessions_left(int(mkt.day_ord[d]), self.pos_exp[0], plan.sessions)
                <= prm[K.P_CLOSE_BEFORE_EXP]
                and j != self.entry_bar
            ):
                reason = 11
            if reason >= 0:
                self._exit_market(
                    j,
                    self.qty,
                    reason,
                    self.v_entry_trade if entered else v_open,
                    float(bars.open[j]),
                    stale=not (priced or entered),
                )

        # ---- 5. the resting stop and targets of a single-instrument position (rules 4, 6, 7); none on a
        # bar without a price (the kernel checks levels only on priced bars)
        self._place_resting(j, priced or entered)

    def _exit_market(
        self, j: int, exit_qty: float, reason: int, v_open: float, und_open: float, *, stale: bool = False
    ) -> None:
        """Close ``exit_qty`` units with market orders filled at this bar's open (``stale``: a leg has no
        price within the staleness limit and fills at its last known one)."""
        self._cancel_resting()
        trade = self._trade()
        action = Action("exit", j, trade.n, trade=trade, reason=reason, exit_qty=exit_qty, stale=stale)
        action.share = self.comm_entry_left * exit_qty / self.qty
        self.comm_entry_left -= action.share
        for k in range(trade.n):
            side = self._side(trade.sign[k], opening=False)
            self._submit(self.pos_asset[k], exit_qty * trade.units[k], side, action, k)
        self.cash_pending += exit_qty * (v_open - self._cost(trade, und_open)) - self._comm(exit_qty, v_open)
        self._leave(exit_qty)

    def _convert(self, j: int, d: int, c: int, px: float, credit: float, net: float) -> None:
        """Sell the farther contract: the long leg becomes a vertical (rule 11)."""
        self._cancel_resting()
        prm = self.prm
        opt = self.plan.market.options
        short_unit = self.comm_unit_entry / abs(float(self.plan.leg_sign[0]))  # one short contract per unit
        self.pos_legs[1] = c
        self.pos_sign[1] = -1.0
        self.pos_mult[1] = K.OPTION_MULT
        self.pos_exp[1] = int(opt.c_exp[c])
        self.pos_strike[1] = float(opt.c_strike[c])
        self.pos_call[1] = bool(opt.c_call[c])
        self.pos_asset[1] = self._contract_asset(c, d)
        self.pos_units[1] = 1.0
        self.pos_ticker[1] = opt.c_ticker[c]
        self.last_mark[1] = px
        action = Action("convert", j, 1, exit_qty=self.qty)
        self._submit(self.pos_asset[1], self.qty, "sell_to_open", action, 1)
        self.cash_pending += self.qty * credit - (
            self.qty * short_unit + float(prm[K.P_COMM_PCT]) * self.qty * credit
        )
        prm[K.P_COMM_UNIT] = self.comm_unit_entry + short_unit
        self.pos_n = 2
        self.single = False
        self.v_entry = net
        self.v_entry_trade = net
        self.best_v = net
        self.stop_v, self.tp_v = (float(x) for x in K._levels(net, 0.0, prm))
        self.converted = True

    def _enter(self, j: int, d: int, pos: int) -> bool:
        """Rule 1, 2, 12: the legs' prices at this open, the size, and market orders for every leg."""
        plan = self.plan
        prm = self.prm
        bars = plan.market.bars
        opt = plan.market.options
        legs: list[tuple[float, float, int, float]] = []  # sign, mult, contract, price
        v_fill = 0.0
        for k in range(self.n_legs):
            if plan.leg_kind[k] == 0:
                c, px, mult = -1, float(bars.open[j]), plan.mult
            else:
                c = self.pend_legs[k]
                if c < 0:
                    return False
                px = self._leg_prices(c, pos)[0]
                if px != px:
                    return False
                mult = K.OPTION_MULT
            sgn = float(plan.leg_sign[k]) if plan.leg_kind[k] == 1 else float(self.pend_entry)
            legs.append((sgn, mult, c, px))
            v_fill += sgn * mult * px
        for k, (sgn, mult, c, _) in enumerate(legs):
            self.pos_sign[k], self.pos_mult[k], self.pos_legs[k] = sgn, mult, c
            if c >= 0:
                self.pos_exp[k] = int(opt.c_exp[c])
                self.pos_strike[k] = float(opt.c_strike[c])
                self.pos_call[k] = bool(opt.c_call[c])
                self.pos_ticker[k] = opt.c_ticker[c]
                self.pos_units[k] = abs(sgn)
            else:
                self.pos_ticker[k] = ""
                self.pos_units[k] = plan.lumi_units
        self.pos_n = self.n_legs
        self.single = self.n_legs == 1
        prm[K.P_COMM_UNIT] = self.comm_unit_entry
        fresh = self._trade()
        cost = self._cost(fresh, float(bars.open[j]))
        v_pay = v_fill + cost  # what one unit costs, costs included
        eq = self.model_cash() + self.cash_pending
        stop_dist = self._stop_distance(v_pay, plan.sig["atr"][j - 1], plan.sig["sig_stop_dist"][j - 1])
        q = self._size(fresh, v_fill, v_pay, stop_dist, eq)
        step = float(prm[K.P_QTY_STEP])
        if q < step - 1e-12:
            return False
        action = Action("entry", j, self.n_legs, exit_qty=q)
        for k, (sgn, _, c, px) in enumerate(legs):
            self.pos_asset[k] = self._contract_asset(c, d) if c >= 0 else plan.underlying
            self.last_mark[k] = px
            self._submit(self.pos_asset[k], q * self.pos_units[k], self._side(sgn, opening=True), action, k)
        comm = q * prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(q * v_fill)
        self.cash_pending -= q * v_pay + comm
        self.qty = q
        self.orig_qty = q
        self.direction = self.pend_entry
        self.v_entry = v_pay
        self.v_entry_trade = v_pay
        self.comm_entry_left = comm  # Lumibot's fees replace it when the fills arrive
        self.entry_bar = j
        self.entry_ts = int(bars.ts[j])
        self.best_v = v_pay
        self.stop_v, self.tp_v = self._entry_levels(
            v_pay, stop_dist, plan.sig["atr"][j - 1], plan.sig["sig_tp_dist"][j - 1]
        )
        self.traded_event = int(plan.sig["sig_event"][j - 1])
        self.next_partial = 0
        self.converted = False
        self.stage_und_ref = float(bars.open[j])
        self.trades_today += 1
        return True

    def _place_resting(self, j: int, priced: bool = True) -> None:
        if self.direction == 0 or not self.single or not priced:
            self._cancel_resting()
            return
        wanted = self._wanted_resting()
        if wanted == [r.key() for r in self.resting]:
            return
        self._cancel_resting()
        side = self._side(self.pos_sign[0], opening=False)
        rises = self.pos_sign[0] < 0  # a short leg's stop and a long leg's targets trigger on a rise
        for kind, price, units, reason, n in wanted:
            if price <= 0.0:
                if rises == (kind == "stop"):
                    # every positive price touches it (a zero-basis position): the fill model's gap
                    # rule fills it at this open, which is a market order here
                    self._exit_market(j, units / self.pos_units[0], reason, *self._open_values(j))
                    return
                continue  # no positive price touches it
            action = Action("resting", j, 1, reason=reason, rest_kind=kind, partial_index=n)
            level = {"stop_price": price} if kind == "stop" else {"limit_price": price}
            order = self._submit(self.pos_asset[0], units, side, action, 0, **level)
            self.resting.append(Resting(order, kind, price, units, reason, n))

    def _open_values(self, j: int) -> tuple[float, float]:
        """(value of one unit, instrument price) at bar ``j``'s open, for a single-leg position."""
        bars = self.plan.market.bars
        if self.pos_legs[0] < 0:
            return self.pos_sign[0] * self.pos_mult[0] * float(bars.open[j]), float(bars.open[j])
        pos = j - int(self.plan.market.day_first_bar[int(bars.day[j])])
        o = self._leg_prices(self.pos_legs[0], pos)[0]
        return self.pos_sign[0] * self.pos_mult[0] * o, o

    def _cancel_resting(self) -> None:
        for rest in self.resting:
            self.actions.pop(rest.order.identifier, None)
            if rest.order.is_active():
                self.broker.cancel_order(rest.order)
        self.resting = []

    # ------------------------------------------------------------------ kernel steps 6-8 at bar i's close

    def _marks(self, i: int) -> tuple[float, float, bool]:
        """(value at the close, best value inside the bar, priced) of the position at bar ``i``."""
        plan = self.plan
        mkt = plan.market
        bars = mkt.bars
        pos = i - int(mkt.day_first_bar[int(bars.day[i])])
        v_close = v_best = 0.0
        priced = True
        for k in range(self.pos_n):
            if self.pos_legs[k] < 0:
                if plan.is_option:  # not traded this session: its last known price
                    priced = False
                    h = lo = c = self.last_mark[k]
                else:
                    h, lo, c = float(bars.high[i]), float(bars.low[i]), float(bars.close[i])
            else:
                _, h, lo, last = self._leg_prices(self.pos_legs[k], pos)
                if last != last:  # no trade within the staleness limit: keep the previous mark
                    priced = False
                    last = self.last_mark[k]
                    h = h if h == h else last
                    lo = lo if lo == lo else last
                c = last
                self.last_mark[k] = last
            s = self.pos_sign[k] * self.pos_mult[k]
            v_close += s * c
            v_best += s * h if s > 0 else s * lo
        if i == self.entry_bar:
            priced = True  # a position entered on this bar was priced at its fill
        return v_close, v_best, priced

    def _finish_bar(self, i: int, *, sentinel: bool) -> None:
        plan = self.plan
        prm = self.prm
        mkt = plan.market
        bars = mkt.bars
        d = int(bars.day[i])
        self.closed_upto = i
        v_close, v_best, priced = self._marks(i) if self.direction != 0 else (0.0, 0.0, True)

        # ---- 6. end of the option's life or of the window: close at this bar's close (rule 8)
        if self.direction != 0 and sentinel:
            expiring = plan.is_option and self.pos_exp[0] <= int(mkt.day_ord[d])
            if i == plan.i1 or expiring:
                self._close_at_close(i, priced, expiring)

        # ---- 7. decisions on this bar's close
        if self.direction != 0:
            self.exposure_bars += 1
            bar_best = v_best if self.single else v_close
            if priced and bar_best > self.best_v:
                self.best_v = bar_best
            if not self.single and priced:  # multi-leg: levels on close marks, filled next open (rule 5)
                self._close_mark_levels(v_close)
            if prm[K.P_STAGED] > 0 and not self.converted and self.pend_exit_frac == 0.0 and priced:
                ref = self.stage_und_ref
                move = (float(bars.close[i]) - ref) / ref * (1.0 if self.pos_call[0] else -1.0)
                prem_up = (v_close - self.v_entry) / abs(self.v_entry)
                trig = (prm[K.P_STAGE_UND_PCT] > 0 and move >= prm[K.P_STAGE_UND_PCT]) or (
                    prm[K.P_STAGE_PREM_PCT] > 0 and prem_up >= prm[K.P_STAGE_PREM_PCT]
                )
                if trig and i < plan.i1 and bars.day[i + 1] == d:
                    width = prm[K.P_STAGE_WIDTH]
                    target = self.pos_strike[0] + width if self.pos_call[0] else self.pos_strike[0] - width
                    opt = mkt.options
                    self.pend_convert = int(
                        K._find_contract(
                            opt.day_c0[d],
                            opt.day_c1[d],
                            self.pos_exp[0],
                            target,
                            self.pos_call[0],
                            opt.c_exp,
                            opt.c_strike,
                            opt.c_call,
                        )
                    )
            exit_signal = plan.sig["exit_long"][i] if self.direction > 0 else plan.sig["exit_short"][i]
            if self.pend_exit_frac == 0.0 and exit_signal:
                self.pend_exit_frac, self.pend_exit_reason = 1.0, 0
        want = 0
        dirp = prm[K.P_DIRECTION]
        if (
            i < plan.i1
            and plan.sig["entry_ok"][i]
            and (prm[K.P_MAX_TRADES_DAY] <= 0 or self.trades_today < prm[K.P_MAX_TRADES_DAY])
        ):
            if plan.sig["long"][i] and dirp >= 0:
                want = 1
            elif plan.sig["short"][i] and dirp <= 0:
                want = -1
        if want != 0 and plan.sig["sig_event"][i] >= 0 and plan.sig["sig_event"][i] == self.traded_event:
            want = 0  # an external signal event is traded at most once (rule 13)
        if want != 0 and self.direction == -want and dirp == 0:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, 10  # reversal (rule 9)
        if want != 0 and (self.direction == 0 or (self.direction == -want and dirp == 0)):
            ok = True
            if plan.is_option:
                opt = mkt.options
                pos = i - int(mkt.day_first_bar[d])
                for k in range(self.n_legs):
                    right = plan.leg_right[k]
                    self.pend_legs[k] = int(
                        K.select_contract(
                            opt.day_c0[d],
                            opt.day_c1[d],
                            pos,
                            bars.close[i],
                            bars.minute[i],
                            mkt.day_ord[d],
                            right == 0 or (right == 2 and want > 0),
                            plan.leg_dte[k],
                            plan.leg_select[k],
                            plan.leg_value[k],
                            prm[K.P_RATE],
                            opt.c_exp,
                            opt.c_strike,
                            opt.c_call,
                            opt.c_off,
                            plan.p_last,
                        )
                    )
                    ok = ok and self.pend_legs[k] >= 0
            if ok:
                self.pend_entry = want
                self.pend_entry_day = d

        # ---- 8. the mark: recorded once this bar's fills are in Lumibot's cash
        self.pending_mark = (i, v_close)
        if sentinel:
            # Lumibot checks working orders when its clock jumps to the next session's open, before
            # that session's first iteration; the fill model checks levels only after the open's exits
            # and entries (steps 1-4), so the exits rest again from the first bar of the next session
            self._cancel_resting()

    def _close_at_close(self, i: int, priced: bool, expiring: bool) -> None:
        """Rule 8: close at bar ``i``'s close with market orders at the sentinel (module note 1)."""
        plan = self.plan
        self._cancel_resting()
        trade = self._trade()
        reason = 9 if i == plan.i1 and not expiring else 8
        action = Action("exit", i, trade.n, trade=trade, reason=reason, exit_qty=self.qty, stale=not priced)
        action.share = self.comm_entry_left
        self.comm_entry_left = 0.0
        und_close = float(plan.market.bars.close[i])
        for k in range(trade.n):
            units = self.qty * trade.units[k]
            if plan.is_option:
                strike, call = self.pos_strike[k], self.pos_call[k]
                intrinsic = max(und_close - strike, 0.0) if call else max(strike - und_close, 0.0)
                price = self.last_mark[k] if priced else intrinsic
            else:
                price = und_close
            if price <= 0.0:
                # worthless: Lumibot cannot fill at zero, and its expiry processing removes the
                # contract at the close; the fill model closes it at zero and pays its commission
                action.prices[k] = 0.0
                action.fees[k] = units * self.per_unit_fee
                self._book(-action.fees[k])
                continue
            self._submit(self.pos_asset[k], units, self._side(trade.sign[k], opening=False), action, k)
        self._leave(self.qty)
        if len(action.prices) == action.n_legs:
            self._finalise(action)

    # ------------------------------------------------------------------ fills (synchronous, module note 3)

    def _on_fill(self, order: Any, price: float, quantity: float) -> None:
        found = self.actions.pop(order.identifier, None)
        if found is None:
            return  # not ours (Lumibot's own expiry settlements)
        action, k = found
        fee = float(getattr(order, "trade_cost", 0.0) or 0.0)
        if action.kind == "resting":
            self._on_resting_fill(action, order, price, quantity, fee)
            return
        action.prices[k] = price
        action.fees[k] = fee
        if len(action.prices) == action.n_legs:
            self._finalise(action)

    def _finalise(self, action: Action) -> None:
        """Book the costs Lumibot does not model and record the trade, from Lumibot's fill prices."""
        plan = self.plan
        pct_rate = float(self.prm[K.P_COMM_PCT]) if plan.own_pct else 0.0
        if action.kind == "convert":
            hs = float(self.prm[K.P_HALF_SPREAD])
            px = action.prices[1]
            q = action.exit_qty
            credit = max(px - hs, 0.0) * K.OPTION_MULT
            self._book(q * credit - q * px * K.OPTION_MULT)  # Lumibot credited the price, the model less
            pct = pct_rate * q * credit
            self._book(-pct)
            self.comm_entry_left += action.fees[1] + pct
            return
        trade = action.trade if action.trade is not None else self._trade()
        v_price = sum(float(trade.sign[k]) * float(trade.mult[k]) * action.prices[k] for k in range(trade.n))
        und = action.prices[0] if not plan.is_option else 0.0
        cost = self._cost(trade, und)
        q = action.exit_qty
        self._book(-q * cost)
        pct = pct_rate * abs(q * v_price)
        self._book(-pct)
        fees = sum(action.fees.values()) + pct
        if action.kind == "entry":
            self.comm_entry_left = fees
            return
        self._record(trade, action, v_price - cost, fees)

    def _on_resting_fill(self, action: Action, order: Any, price: float, quantity: float, fee: float) -> None:
        trade = self._trade()
        exit_qty = quantity / trade.units[0]
        v_price = float(trade.sign[0]) * float(trade.mult[0]) * price
        cost = self._cost(trade, abs(v_price) / self.plan.mult)
        self._book(-exit_qty * cost)
        action.bar = self._bar_now()
        action.exit_qty = exit_qty
        action.share = self.comm_entry_left * exit_qty / self.qty
        self.comm_entry_left -= action.share
        self._record(trade, action, v_price - cost, fee)
        self.resting = [r for r in self.resting if r.order.identifier != order.identifier]
        self._leave(exit_qty)
        if action.rest_kind == "partial":
            self.next_partial = action.partial_index + 1
        if self.direction == 0 or action.rest_kind != "partial":
            if self.direction != 0:
                self.failures.append(
                    f"a {action.rest_kind} order left {self.qty} units open at bar {self.cur_bar}"
                )
            self._cancel_resting()
            return
        # a partial filled: the stop and the final target behind it now close only what is left
        for rest in self.resting:
            if rest.kind in ("stop", "target"):
                rest.units = self.qty * trade.units[0]
                rest.order.quantity = rest.units

    def _bar_now(self) -> int:
        """The bar Lumibot is filling against (resting orders only fill on real bars)."""
        ns = int(round(self.broker.datetime.timestamp())) * 1_000_000_000
        bar = self.plan.bar_at.get(ns)
        if bar is None:
            self.failures.append(f"a resting order filled at {self.broker.datetime}, which is not a bar")
            return self.cur_bar
        return bar

    def _record(self, trade: Trade, action: Action, v_fill: float, comm: float) -> None:
        q = action.exit_qty
        self.trades.append(
            {
                "entry_bar": trade.entry_bar,
                "exit_bar": action.bar,
                "direction": trade.direction,
                "quantity": q,
                "entry_v": trade.entry_v,
                "exit_v": v_fill,
                "pnl": q * (v_fill - trade.entry_v) - comm - action.share,
                "commission": comm + action.share,
                "reason": action.reason,
                "instrument": trade.tickers if self.plan.is_option else self.plan.market.spec_symbol,
                "stale": action.stale,
            }
        )
