"""Option contracts from the broker's chain for the live strategy (rule 2 live): each leg's contract chosen
by the kernel's own ``select_contract`` on the chain's prices (quote mids), one snapshot per expiry."""

from __future__ import annotations

import datetime as dt
from typing import Any

from brokers.live import bars as live_data
from evaluator import _kernel as K


class LiveChain:
    """Mixin of :class:`brokers.live.LiveSpecStrategy`: contract selection from the broker's chain."""

    def _live_select(self: Any, want: int, i: int) -> list[live_data.Contract] | None:
        """Rule 2 live: each leg's contract from the broker's chain, by the kernel's own selection rule
        (``select_contract``) on the chain's prices; None when a leg finds no priced contract."""
        plan = self.plan
        prm = self.prm
        bars = plan.market.bars
        spot = float(bars.close[i])
        day = bars.session_dates[int(bars.day[i])]
        today = live_data.day_ordinal(day)
        underlying = plan.underlying
        try:
            chains = self.get_chains(underlying)
            expiries = sorted(dt.date.fromisoformat(str(e)[:10]) for e in chains["Chains"]["CALL"])
        except Exception as exc:  # no chain: no entry this bar
            self.log_message(f"no option chain for {underlying.symbol}: {exc}", color="yellow")
            return None
        snapshot: dict[dt.date, list[live_data.Contract]] = {}
        legs: list[live_data.Contract] = []
        for k in range(self.n_legs):
            right = int(plan.leg_right[k])
            want_call = right == 0 or (right == 2 and want > 0)
            dte = int(plan.leg_dte[k])
            contracts: list[live_data.Contract] = []
            for expiry in [e for e in expiries if (e - day).days >= dte][:3]:
                if expiry not in snapshot:
                    try:
                        snapshot[expiry] = self._live_chain(expiry, spot)
                    except Exception as exc:  # that expiry's chain is unavailable: select from the others
                        self.log_message(f"no {underlying.symbol} chain for {expiry}: {exc}", color="yellow")
                        snapshot[expiry] = []
                contracts.extend(snapshot[expiry])
            if not contracts:
                self.log_message(f"no {underlying.symbol} expiry at least {dte} days out", color="yellow")
                return None
            c_exp, c_strike, c_call, c_off, p_last = live_data.chain_arrays(contracts)
            c = int(
                K.select_contract(
                    0,
                    len(contracts),
                    0,
                    spot,
                    int(bars.minute[i]),
                    today,
                    want_call,
                    dte,
                    int(plan.leg_select[k]),
                    float(plan.leg_value[k]),
                    prm[K.P_RATE],
                    c_exp,
                    c_strike,
                    c_call,
                    c_off,
                    p_last,
                )
            )
            if c < 0:
                self.log_message(
                    f"leg {k + 1}: no priced {underlying.symbol} contract in the chain", color="yellow"
                )
                return None
            legs.append(contracts[c])
        return legs

    def _live_chain(self: Any, expiry: dt.date, spot: float) -> list[live_data.Contract]:
        underlying = self.plan.underlying
        frame = self.get_chain_full_info(underlying, expiry, underlying_price=spot, risk_free_rate=0.0)
        out = []
        for row in frame.to_dict("records") if frame is not None else []:
            kind = str(row.get("option_type") or row.get("right") or "").lower()
            if kind not in ("call", "put") or row.get("strike") is None:
                continue
            out.append(
                live_data.Contract(
                    expiry,
                    float(row["strike"]),
                    kind == "call",
                    live_data.chain_price(row),
                    underlying.symbol,
                )
            )
        return out
