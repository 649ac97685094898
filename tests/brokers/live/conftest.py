"""The live strategy's fixtures (fake brokers on 127.0.0.1 and Lumibot's brokers pointed at them), shared
with the live tests in ``tests/evaluator/test_spec_strategy_live.py``."""

from tests.evaluator.test_spec_strategy_live import (  # noqa: F401 - fixtures pytest finds by name
    _no_thread_left_behind,
    live_env,
    tradelocker,
    tradier,
)
