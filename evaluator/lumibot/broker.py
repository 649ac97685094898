"""Lumibot's backtesting broker with the strategy's synchronous fill hook (:mod:`evaluator.lumibot`, note 3)."""

from __future__ import annotations

from typing import Any

from evaluator.lumibot._lumibot import BacktestingBroker


class SpecBroker(BacktestingBroker):
    """Lumibot's backtesting broker with a synchronous fill hook (module note 3), and without the
    over-close check for the strategy's resting exits (module note 3)."""

    fill_hook: Any = None

    def resolve_option_order_intent(self, order: Any, additional_active_orders: Any = None) -> Any:
        if getattr(order, "spec_exit_group", False):
            return order  # explicit sides; the fill hook keeps the group within the position
        return super().resolve_option_order_intent(order, additional_active_orders)

    def _process_filled_order(self, order: Any, price: Any, quantity: Any) -> Any:
        position = super()._process_filled_order(order, price, quantity)
        if self.fill_hook is not None:
            self.fill_hook(order, float(price), float(quantity))
        return position
