"""The first orders a deployment would send, for ``search promote --dry-run`` (no network).

A paper trader computes its signals from the broker's live bars, so nothing here can know tomorrow's
orders. What a dry run can show is the exact form of what it sends: the candidate is replayed with the
fast engine on the last sessions of its study's data store, and the first positions of that replay are
written as the :class:`brokers.base.OrderRequest` s the adapter would receive (sides, OCC symbols,
position effects, order type, time in force and the idempotent client order id). Quantities are the
backtest's, on its initial cash; the paper trader sizes from the account's equity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from brokers.base import AssetClass, OrderRequest, PositionEffect, Side
from data.store import Store
from evaluator.fast import run as fast_run
from evaluator.market import load_market, signal_symbol
from spec_space.instruments import forex_pair
from spec_space.models import StrategySpec

__all__ = ["first_orders", "order_lines", "preview_lines"]

NY = ZoneInfo("America/New_York")


def first_orders(
    spec: StrategySpec, store: Store, *, end: dt.date, tag: str, positions: int = 2, sessions: int = 5
) -> tuple[list[tuple[dt.datetime, str, OrderRequest]], tuple[dt.date, dt.date] | None]:
    """(time, what, request) for the entry and exits of the first ``positions`` positions of a replay
    over the last ``sessions`` sessions up to ``end``, and the replayed window (None: no sessions)."""
    days = store.sessions(signal_symbol(spec), end - dt.timedelta(days=4 * sessions + 10), end)
    if not days:
        return [], None
    start, last = days[-sessions] if len(days) >= sessions else days[0], days[-1]
    result = fast_run(spec, load_market(store, spec, start, last), start, last)
    asset = AssetClass.of(spec.instrument.type)
    legs = spec.instrument.legs
    # an option leg is bought or sold as the spec's leg says, whatever the view: a "short" ZRCE position
    # is a bought put (the trade row's side is the signal's direction)
    opens_with_buy = str(legs[0].side) == "buy" if asset is AssetClass.OPTION and len(legs) == 1 else None
    out: list[tuple[dt.datetime, str, OrderRequest]] = []
    seen: list[Any] = []
    for row in result.trades.iter_rows(named=True):
        if row["trade_id"] not in seen:
            if len(seen) == positions:
                break
            seen.append(row["trade_id"])
            out.append(_order(row, asset, tag, entry=True, opens_with_buy=opens_with_buy))
        out.append(_order(row, asset, tag, entry=False, opens_with_buy=opens_with_buy))
    return out, (start, last)


def _order(
    row: Mapping[str, Any], asset: AssetClass, tag: str, *, entry: bool, opens_with_buy: bool | None = None
) -> tuple[dt.datetime, str, OrderRequest]:
    opens = row["side"] == "long" if opens_with_buy is None else opens_with_buy
    buy = opens if entry else not opens
    when = _time(row["entry_time"] if entry else row["exit_time"])
    effect = PositionEffect.OPEN if entry else PositionEffect.CLOSE
    symbol, quantity = str(row["instrument"]), float(row["quantity"])
    if asset is AssetClass.FOREX:
        # the backtest counts lots of the store's ticker (C:EURUSD); the adapter gets the pair and units of
        # the base currency (0.1 lot of EURUSD = 10,000 EUR), as the live strategy sends them
        pair = forex_pair(symbol)
        symbol, quantity = pair.pair, round(quantity * pair.lot_units, 6)
    request = OrderRequest.single(
        symbol,
        Side.BUY if buy else Side.SELL,
        quantity,
        asset_class=asset,
        position_effect=effect if asset in (AssetClass.OPTION, AssetClass.EQUITY) else None,
        strategy_tag=tag,
        intent=f"{tag}:{when.isoformat()}:{'entry' if entry else 'exit'}",
    )
    what = f"entry ({row['side']})" if entry else f"exit ({row['exit_reason']})"
    return when, what, request


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    else:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(NY)


def order_lines(spec: StrategySpec, store: Store, *, end: dt.date, tag: str, positions: int = 2) -> list[str]:
    """The dry run's text: a header naming the replayed window, then one line per order."""
    orders, window = first_orders(spec, store, end=end, tag=tag, positions=positions)
    if window is None:
        return [f"  first orders: no {signal_symbol(spec)} sessions in {store.root} up to {end} to replay"]
    head = (
        f"  first orders it would send (the candidate replayed with the fast engine on {window[0]} .. {window[1]} "
        "of the store; live, the paper trader computes them from the broker's bars and sizes from the account):"
    )
    if not orders:
        return [head, "    none: no signal in those sessions"]
    lines = [head]
    for when, what, r in orders:
        leg = r.legs[0]
        effect = f"_to_{leg.position_effect.value}" if leg.position_effect else ""
        # a futures spec names a root; live, the deployment trades the broker's front contract of it
        symbol = f"{leg.symbol} (front contract)" if spec.instrument.type == "future" else leg.symbol
        lines.append(
            f"    {when:%Y-%m-%d %H:%M} ET  {leg.side.value}{effect} {leg.quantity:g} {symbol} "
            f"{r.order_type.value} {r.time_in_force.value}  client id {r.client_order_id}  [{what}]"
        )
    return lines


def preview_lines(study: Any, spec: StrategySpec, *, tag: str) -> list[str]:
    """:func:`order_lines` on the store and data window a study recorded (an Optuna study's user attrs)."""
    attrs = study.user_attrs
    root, holdout = attrs.get("data_root"), attrs.get("holdout") or {}
    if not root or "***" in root or not holdout.get("end"):
        return ["  first orders: the study records no usable data store or window to replay them on"]
    try:
        return order_lines(spec, Store(root), end=dt.date.fromisoformat(holdout["end"]), tag=tag)
    except (OSError, ValueError) as exc:  # a preview must not stop the dry run; say why it is missing
        return [f"  first orders: could not replay the candidate on {root}: {exc}"]
