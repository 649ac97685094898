"""What a deployment is doing now, for ``search deployments``: the store's record (broker, masked account,
paper PnL against the range the backtest predicted, the last error event) and, for an active deployment,
its account at the broker read through the adapter (positions, working orders).

A broker that cannot be reached (credentials missing or refused, the API down) is reported as such in
the row, never as a traceback; finished deployments are not looked up at the broker (their account may
trade another deployment now) and show the positions of their last recorded snapshot. Adapters are made
once per broker and mode and closed afterwards; reads are not retried (a listing must not hang).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from brokers.base import BrokerAdapter, Order, Position
from brokers.credentials import CredentialsError
from brokers.deployments import (
    Deployment,
    DeploymentEvent,
    DeploymentStore,
    ExpectationCheck,
    Mode,
    PaperStats,
    account_key,
    check_expectation,
    paper_stats,
    scrub,
)
from brokers.errors import BrokerError

#: Event kinds that report something going wrong (``brokers.paper`` and ``brokers.deployments`` record them).
ERROR_EVENTS = ("failed", "restart", "risk_breach", "error")

AdapterFactory = Callable[[str, Mode], BrokerAdapter]


@dataclass(frozen=True)
class BrokerView:
    """A deployment's account as the broker reports it now (or why it could not be read)."""

    reachable: bool
    positions: tuple[Position, ...] = ()
    orders: tuple[Order, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class DeploymentStatus:
    deployment: Deployment
    stats: PaperStats
    check: ExpectationCheck
    broker: BrokerView | None  # None: not looked up (finished, or asked not to)
    last_error: DeploymentEvent | None
    recorded_positions: tuple[str, ...]  # "SYMBOL qty" from the last snapshot

    @property
    def position_text(self) -> str:
        if self.broker is not None and self.broker.reachable:
            return positions_text(self.broker.positions)
        if not self.recorded_positions:
            return "flat (last snapshot)" if self.broker is None else "-"
        return ", ".join(self.recorded_positions) + " (last snapshot)"

    @property
    def orders_text(self) -> str:
        if self.broker is None:
            return "-"
        if not self.broker.reachable:
            return self.broker.problem
        return orders_text(self.broker.orders)

    @property
    def last_error_text(self) -> str:
        if self.last_error is None:
            return "-"
        event = self.last_error
        return f"{event.at:%Y-%m-%d %H:%M} {event.kind}: {event.message}"


def positions_text(positions: Sequence[Position]) -> str:
    if not positions:
        return "flat"
    return ", ".join(f"{p.symbol} {p.quantity:+,g}" for p in positions)


def orders_text(orders: Sequence[Order]) -> str:
    """Working orders, one phrase each: ``sell 2 MESZ26 stop 5996.25``."""
    if not orders:
        return "none"
    parts = []
    for order in orders:
        legs = " / ".join(f"{leg.side.value} {leg.quantity:g} {leg.symbol}" for leg in order.legs)
        price = order.stop_price if order.stop_price is not None else order.limit_price
        at = f" {price:g}" if price is not None else ""
        parts.append(f"{legs} {order.order_type.value}{at}")
    return "; ".join(parts)


def last_error(events: Iterable[DeploymentEvent]) -> DeploymentEvent | None:
    errors = [e for e in events if e.kind in ERROR_EVENTS]
    return errors[-1] if errors else None


def _recorded_positions(store: DeploymentStore, deployment_id: str) -> tuple[str, ...]:
    snapshots = store.snapshots(deployment_id)
    if not snapshots:
        return ()
    return tuple(f"{p['symbol']} {float(p['quantity']):+,g}" for p in snapshots[-1].positions)


def _account_matches(adapter: BrokerAdapter, dep: Deployment) -> bool:
    from brokers.paper import account_id_of

    return account_key(dep.broker, account_id_of(adapter)) == dep.account_key


def broker_view(adapter: BrokerAdapter, dep: Deployment) -> BrokerView:
    """Positions and working orders of ``dep``'s account through ``adapter``."""
    try:
        if not _account_matches(adapter, dep):
            return BrokerView(
                False,
                problem=f"the {dep.broker} credentials now point at another account than {dep.account_masked}",
            )
        return BrokerView(True, tuple(adapter.get_positions()), tuple(adapter.list_open_orders()))
    except BrokerError as exc:
        return BrokerView(False, problem=scrub(f"{dep.broker} unreachable: {exc}"))


def default_adapters(env_file: str | Path | None = None, timeout: float = 5.0) -> AdapterFactory:
    """Adapters from the environment's credentials, failing fast (no retries, ``timeout`` seconds)."""
    from brokers.paper import make_adapter

    def make(broker: str, mode: Mode) -> BrokerAdapter:
        return make_adapter(
            broker, mode, env_file=env_file, retry_count=0, timeout=timeout, submit_settle_seconds=0.0
        )

    return make


def deployment_statuses(
    store: DeploymentStore,
    deployments: Sequence[Deployment],
    *,
    adapters: AdapterFactory | None = None,
) -> list[DeploymentStatus]:
    """The status of each deployment; active ones are looked up at their broker when ``adapters`` is given."""
    made: dict[tuple[str, Mode], BrokerAdapter | str] = {}
    out = []
    try:
        for dep in deployments:
            view = None
            if adapters is not None and dep.status.is_active:
                key = (dep.broker, dep.mode)
                if key not in made:
                    try:
                        made[key] = adapters(dep.broker, dep.mode)
                    except (CredentialsError, ValueError) as exc:
                        made[key] = scrub(f"{dep.broker} credentials: {exc}")
                adapter = made[key]
                view = (
                    BrokerView(False, problem=adapter)
                    if isinstance(adapter, str)
                    else broker_view(adapter, dep)
                )
            stats = paper_stats(dep.starting_equity, store.snapshots(dep.id))
            out.append(
                DeploymentStatus(
                    deployment=dep,
                    stats=stats,
                    check=check_expectation(dep.expected, stats),
                    broker=view,
                    last_error=last_error(store.events(dep.id)),
                    recorded_positions=_recorded_positions(store, dep.id),
                )
            )
    finally:
        for adapter in made.values():
            if not isinstance(adapter, str):
                adapter.close()
    return out
