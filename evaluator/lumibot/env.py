"""The environment Lumibot runs in: the variables it reads that would override arguments or reach the
network, one list for backtests and live deployments (:mod:`brokers.paper`, :mod:`brokers.lumibot_tradelocker`),
and :func:`lumibot_environment`, which runs a backtest with them controlled in its own folder.

Importing this module does not import Lumibot (the deployment launcher sets a child's environment from it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

#: Variables that send data elsewhere (cloud, Discord, a variables database) or choose a broker, a data
#: source, a market or parameters behind the caller's back: removed for backtests and live deployments.
NETWORK_ENV = (
    "LUMIWEALTH_API_KEY",
    "DB_CONNECTION_STR",
    "ACCOUNT_HISTORY_DB_CONNECTION_STR",
    "DISCORD_WEBHOOK_URL",
    "LIVE_CONFIG",
    "TRADING_BROKER",
    "DATA_SOURCE",
    "MARKET",
    "LUMIBOT_STRATEGY_PARAMETERS",
    "BACKTESTING_PARAMETERS",
)
#: Set everywhere: Lumibot loads any ``.env`` it finds above the script or the working directory on
#: import, and its variables then override arguments; credentials come from brokers.credentials only.
NO_DOTENV = {"LUMIBOT_DISABLE_DOTENV": "true"}

# Variables Lumibot reads that would override a backtest's arguments or reach the network: removed for a run.
_UNSET_ENV = (
    *NETWORK_ENV,
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
_SET_ENV = {
    **NO_DOTENV,
    "IS_BACKTESTING": "true",
    "BACKTESTING_QUIET_LOGS": "true",
    "BACKTESTING_SHOW_PROGRESS_BAR": "false",
    "LUMIBOT_LOG_LEVEL": "ERROR",
}
#: Removed for a live (paper) deployment and its child process: the network variables, anything that makes
#: it a backtest, and Lumibot's own Tradier token (credentials come from brokers.credentials only).
LIVE_UNSET = ("IS_BACKTESTING", *NETWORK_ENV, "TRADIER_TOKEN", "TRADIER_TOKEN_PATH")
#: Set for a live deployment: no ``.env`` discovery, no banner, unbuffered output.
LIVE_SET = {**NO_DOTENV, "LUMIBOT_HIDE_BOTSPOT_TIP": "1", "PYTHONUNBUFFERED": "1"}
_ENV_LOCK = threading.RLock()


def apply_lumibot_environment(unset: Iterable[str] = (), set_: Mapping[str, str] | None = None) -> None:
    """Remove ``unset`` and set ``set_`` in ``os.environ`` for good (a deployment's own process)."""
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(set_ or {})


@contextlib.contextmanager
def lumibot_environment(run_dir: Path | None = None) -> Iterator[None]:
    """Set the variables Lumibot must see, remove the ones that would override arguments, and
    (with ``run_dir``) work in that folder; everything is restored on exit. Process-wide, so runs
    are serialised by a lock."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in (*_UNSET_ENV, *_SET_ENV)}
        cwd = os.getcwd()
        try:
            for name in _UNSET_ENV:
                os.environ.pop(name, None)
            os.environ.update(_SET_ENV)
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


@contextlib.contextmanager
def no_dotenv() -> Iterator[None]:
    """Only :data:`NO_DOTENV` set (for importing Lumibot outside a backtest); restored on exit."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in NO_DOTENV}
        os.environ.update(NO_DOTENV)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


__all__ = [
    "LIVE_SET",
    "LIVE_UNSET",
    "NETWORK_ENV",
    "NO_DOTENV",
    "apply_lumibot_environment",
    "lumibot_environment",
    "no_dotenv",
]
