"""The environment variables Lumibot reads, and one way to set them around a backtest or a live run.

Lumibot reads its configuration from the environment (and from any ``.env`` file it finds, unless
``LUMIBOT_DISABLE_DOTENV``), so a stray variable can override a run's arguments, send data to the
network (cloud updates, Discord, a variables database) or turn a live run into a backtest. Every
Lumibot entry point (the backtest engine, the paper trader, the TradeLocker glue) goes through
:func:`lumibot_environment` or :func:`apply_lumibot_environment` with the lists below.

This module imports nothing from Lumibot: set the environment first, then import it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

__all__ = [
    "BACKTEST_SET",
    "BACKTEST_UNSET",
    "LIVE_SET",
    "LIVE_UNSET",
    "NO_DOTENV",
    "apply_lumibot_environment",
    "lumibot_environment",
]

# Variables that reach the network or override a run's settings, in backtests and live runs alike.
_OVERRIDES = (
    "BACKTESTING_PARAMETERS",
    "LUMIBOT_STRATEGY_PARAMETERS",
    "MARKET",
    "LUMIWEALTH_API_KEY",
    "DB_CONNECTION_STR",
    "ACCOUNT_HISTORY_DB_CONNECTION_STR",
    "DISCORD_WEBHOOK_URL",
    "LIVE_CONFIG",
    "TRADING_BROKER",
    "DATA_SOURCE",
)
#: Removed for a backtest: the above, plus the backtest settings, outputs and plots Lumibot would read.
BACKTEST_UNSET: tuple[str, ...] = (
    *_OVERRIDES,
    "BACKTESTING_DATA_SOURCE",
    "BACKTESTING_DATA_SOURCES",
    "BACKTESTING_START",
    "BACKTESTING_END",
    "BACKTESTING_BUDGET",
    "BACKTESTING_MARKET",
    "BACKTESTING_PROFILE",
    "SAVE_LOGFILE",
    "LOG_BACKTEST_PROGRESS_TO_FILE",
    "LUMIBOT_BACKTEST_AUDIT",
    "SHOW_PLOT",
    "SHOW_TEARSHEET",
    "SHOW_INDICATORS",
    "LOG_ERRORS_TO_CSV",
)
#: Set for a backtest: a backtest, quiet, no ``.env`` discovery.
BACKTEST_SET: Mapping[str, str] = {
    "IS_BACKTESTING": "true",
    "BACKTESTING_QUIET_LOGS": "true",
    "BACKTESTING_SHOW_PROGRESS_BAR": "false",
    "LUMIBOT_DISABLE_DOTENV": "true",
    "LUMIBOT_LOG_LEVEL": "ERROR",
}
#: Removed for a live (paper) run: the overrides, anything that makes it a backtest, Lumibot's own Tradier token.
LIVE_UNSET: tuple[str, ...] = (*_OVERRIDES, "IS_BACKTESTING", "TRADIER_TOKEN", "TRADIER_TOKEN_PATH")
#: Set for a live run (and its child process): no ``.env`` discovery, no banner, unbuffered output.
LIVE_SET: Mapping[str, str] = {
    "LUMIBOT_DISABLE_DOTENV": "true",
    "LUMIBOT_HIDE_BOTSPOT_TIP": "1",
    "PYTHONUNBUFFERED": "1",
}
#: Only no ``.env`` discovery (importing Lumibot modules that read it at import time).
NO_DOTENV: Mapping[str, str] = {"LUMIBOT_DISABLE_DOTENV": "true"}

_LOCK = threading.RLock()


def apply_lumibot_environment(
    unset: Iterable[str] = (), set_: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """Remove ``unset`` and set ``set_`` in ``os.environ`` for good; returns the previous values."""
    set_ = dict(set_ or {})
    unset = tuple(unset)
    saved = {name: os.environ.get(name) for name in (*unset, *set_)}
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(set_)
    return saved


@contextlib.contextmanager
def lumibot_environment(
    *, unset: Iterable[str] = (), set_: Mapping[str, str] | None = None, run_dir: Path | None = None
) -> Iterator[None]:
    """:func:`apply_lumibot_environment` (and, with ``run_dir``, work in that folder) until the block ends;
    everything is restored then. Process-wide, so the blocks of several threads are serialised by a lock."""
    with _LOCK:
        cwd = os.getcwd()
        saved = apply_lumibot_environment(unset, set_)
        try:
            if run_dir is not None:
                os.chdir(run_dir)
            yield
        finally:
            if run_dir is not None:
                os.chdir(cwd)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
