"""Per-deployment risk limits and the guard that enforces them. Pure logic: no I/O, no clock reads
except through the injected ``today`` callable.

* ``max_position_size``: the largest absolute position per symbol, in :class:`~brokers.base.Leg`
  units (shares, contracts, FX units). An order that would grow a position beyond it is refused;
  orders that shrink a position are always allowed (they reduce risk).
* ``daily_loss_limit``: the most the deployment may lose in one trading day (realised plus open
  PnL, a positive amount of account currency). Once breached the guard halts: every further order
  that is not risk-reducing is refused until the day changes.
* ``max_orders_per_day``: submissions per trading day (each :meth:`RiskGuard.record_submission`).

:class:`~brokers.base.BrokerAdapter` calls :meth:`RiskGuard.check_order` before submitting and
:meth:`RiskGuard.record_submission` after, when a guard is attached (its ``risk_guard``: every order of a
deployment, see :mod:`brokers.lumibot_broker`); the deployment's monitor calls
:meth:`RiskGuard.evaluate_pnl` from its own thread, so the guard serialises its state with a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from brokers.base import Balance, OrderRequest, Position
from brokers.errors import BrokerError

# US brokers and the NYSE session roll the trading day at midnight New York time.
_DEFAULT_TZ = ZoneInfo("America/New_York")


def _today_new_york() -> date:
    return datetime.now(_DEFAULT_TZ).date()


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _qty(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0").rstrip(".")


class RiskLimits(BaseModel):
    """Limits of one deployment. ``None`` disables a limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position_size: float | None = Field(
        default=None, gt=0, description="max |position| per symbol, in units"
    )
    daily_loss_limit: float | None = Field(
        default=None, gt=0, description="max loss per day, account currency"
    )
    max_orders_per_day: int | None = Field(default=None, gt=0, description="max submissions per trading day")

    @model_validator(mode="after")
    def _at_least_one(self) -> RiskLimits:
        if (
            self.max_position_size is None
            and self.daily_loss_limit is None
            and self.max_orders_per_day is None
        ):
            raise ValueError(
                "RiskLimits sets no limit: give at least one of max_position_size, daily_loss_limit, "
                "max_orders_per_day"
            )
        return self


class RiskLimitBreached(BrokerError):
    """An order or the day's PnL breaks a limit. ``reason`` is the human sentence, ``limit`` the
    field name (``"daily_loss_limit"``...), ``value``/``threshold`` the compared numbers."""

    def __init__(self, reason: str, *, limit: str, value: float, threshold: float) -> None:
        super().__init__(reason, broker="risk")
        self.reason = reason
        self.limit = limit
        self.value = value
        self.threshold = threshold


class RiskGuard:
    """Checks orders and PnL against :class:`RiskLimits` for one deployment.

    State (orders counted, halt after a loss breach) resets when ``today()`` changes. One guard per
    deployment; its methods may be called from several threads (the broker's and the monitor's).
    """

    def __init__(self, limits: RiskLimits, *, today: Callable[[], date] = _today_new_york) -> None:
        self.limits = limits
        self._today = today
        self._day = today()
        self._orders_today = 0
        self._halt: RiskLimitBreached | None = None
        self._lock = threading.RLock()

    @property
    def orders_today(self) -> int:
        self._roll_day()
        return self._orders_today

    @property
    def halted(self) -> RiskLimitBreached | None:
        """The breach that halted trading today, or None."""
        self._roll_day()
        return self._halt

    def _roll_day(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._orders_today, self._halt = day, 0, None

    # ----------------------------------------------------------------- orders
    def evaluate_order(
        self, request: OrderRequest, positions: Sequence[Position]
    ) -> RiskLimitBreached | None:
        """The first limit ``request`` would break given current ``positions``, or None."""
        with self._lock:
            return self._evaluate_order(request, positions)

    def _evaluate_order(
        self, request: OrderRequest, positions: Sequence[Position]
    ) -> RiskLimitBreached | None:
        self._roll_day()
        reducing = _is_reducing(request, positions)
        if self._halt is not None and not reducing:
            return RiskLimitBreached(
                f"trading halted for {self._day.isoformat()}: {self._halt.reason}; only risk-reducing orders allowed",
                limit=self._halt.limit,
                value=self._halt.value,
                threshold=self._halt.threshold,
            )
        max_orders = self.limits.max_orders_per_day
        if max_orders is not None and self._orders_today >= max_orders and not reducing:
            return RiskLimitBreached(
                f"orders today {self._orders_today} reached limit {max_orders}",
                limit="max_orders_per_day",
                value=float(self._orders_today),
                threshold=float(max_orders),
            )
        max_size = self.limits.max_position_size
        if max_size is not None:
            current = _net_positions(positions)
            for leg in request.legs:
                before = current.get(leg.symbol.upper(), 0.0)
                after = before + leg.signed_quantity
                if abs(after) > max_size and abs(after) > abs(before):
                    return RiskLimitBreached(
                        f"position in {leg.symbol} would be {_qty(after)}, exceeds limit {_qty(max_size)} "
                        f"(now {_qty(before)})",
                        limit="max_position_size",
                        value=abs(after),
                        threshold=max_size,
                    )
        return None

    def check_order(self, request: OrderRequest, positions: Sequence[Position]) -> None:
        """Raise :class:`RiskLimitBreached` if ``request`` breaks a limit. Called before submitting."""
        breach = self.evaluate_order(request, positions)
        if breach is not None:
            raise breach

    def record_submission(self, request: OrderRequest) -> None:
        """Count one submitted order toward ``max_orders_per_day``. Called after a successful submit."""
        with self._lock:
            self._roll_day()
            self._orders_today += 1

    # ----------------------------------------------------------------- PnL
    def evaluate_pnl(self, realized_today: float, unrealized: float = 0.0) -> RiskLimitBreached | None:
        """A breach when today's loss (``-(realized_today + unrealized)``) exceeds the daily limit.

        A breach halts the guard for the rest of the day (see :meth:`evaluate_order`).
        """
        with self._lock:
            return self._evaluate_pnl(realized_today, unrealized)

    def _evaluate_pnl(self, realized_today: float, unrealized: float) -> RiskLimitBreached | None:
        self._roll_day()
        limit = self.limits.daily_loss_limit
        if limit is None:
            return None
        loss = -(realized_today + unrealized)
        if loss <= limit:
            return None
        breach = RiskLimitBreached(
            f"daily loss {_money(loss)} exceeds limit {_money(limit)}",
            limit="daily_loss_limit",
            value=loss,
            threshold=limit,
        )
        self._halt = breach
        return breach

    def check_pnl(self, realized_today: float, unrealized: float = 0.0) -> None:
        """Raise :class:`RiskLimitBreached` when the daily loss limit is exceeded."""
        breach = self.evaluate_pnl(realized_today, unrealized)
        if breach is not None:
            raise breach

    def check_balance(self, balance: Balance) -> None:
        """:meth:`check_pnl` from a broker :class:`~brokers.base.Balance` (missing PnL counts as 0)."""
        self.check_pnl(balance.closed_pnl_today or 0.0, balance.open_pnl or 0.0)


def _net_positions(positions: Sequence[Position]) -> dict[str, float]:
    net: dict[str, float] = {}
    for pos in positions:
        net[pos.symbol.upper()] = net.get(pos.symbol.upper(), 0.0) + pos.quantity
    return net


def _is_reducing(request: OrderRequest, positions: Sequence[Position]) -> bool:
    """True when every leg shrinks an existing position without flipping it."""
    net = _net_positions(positions)
    for leg in request.legs:
        before = net.get(leg.symbol.upper(), 0.0)
        after = before + leg.signed_quantity
        if before == 0 or abs(after) >= abs(before) or (after != 0 and (after > 0) != (before > 0)):
            return False
    return True


__all__ = ["RiskGuard", "RiskLimitBreached", "RiskLimits"]
