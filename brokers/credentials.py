"""Broker credentials from the environment or a ``.env`` file.

Variables (the process environment always wins over ``.env``; ``.env`` never overrides it):

* Tradier: ``TRADIER_API_KEY``, ``TRADIER_ACCOUNT_ID``, ``TRADIER_BASE_URL`` (default: the sandbox
  ``https://sandbox.tradier.com/v1``; the live ``https://api.tradier.com/v1`` only with ``live=True``).
* TradeLocker: ``TRADELOCKER_USERNAME`` (the login e-mail), ``TRADELOCKER_PASSWORD``,
  ``TRADELOCKER_SERVER`` (the broker's server name as shown on the TradeLocker login screen, e.g. the
  TrendMarkets server), ``TRADELOCKER_ENV`` (``demo`` (default), ``live`` or a base URL; live only
  with ``live=True``), optional ``TRADELOCKER_ACC_NUM`` to pick one of several accounts.

Secrets are :class:`pydantic.SecretStr`: ``repr()``/``str()`` of a credentials object never shows
them; call ``.get_secret_value()`` at the single place that sends them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, SecretStr

TRADIER_SANDBOX_URL = "https://sandbox.tradier.com/v1"
TRADIER_LIVE_URL = "https://api.tradier.com/v1"
TRADELOCKER_DEMO_URL = "https://demo.tradelocker.com"
TRADELOCKER_LIVE_URL = "https://live.tradelocker.com"


def is_live_url(url: str, live_url: str) -> bool:
    """True when ``url`` is on the host of ``live_url``, a broker's live (real money) API: every live check (the
    credentials' ``is_live``, the adapters' refusal without ``allow_live``) asks this one question."""
    return urlparse(url).hostname == urlparse(live_url).hostname


class CredentialsError(ValueError):
    """A credential is missing or contradicts the requested mode. The message names the variable."""


class TradierCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    account_id: str
    base_url: str = TRADIER_SANDBOX_URL

    @property
    def is_live(self) -> bool:
        return is_live_url(self.base_url, TRADIER_LIVE_URL)


class TradeLockerCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    password: SecretStr
    server: str
    environment_url: str = TRADELOCKER_DEMO_URL
    acc_num: int | None = None

    @property
    def is_live(self) -> bool:
        return is_live_url(self.environment_url, TRADELOCKER_LIVE_URL)


def read_environment(
    env_file: str | Path | None = ".env", environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Merge ``env_file`` (if it exists) under the process environment; the environment wins.

    ``os.environ`` is not modified. ``environ`` replaces ``os.environ`` (tests).
    """
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _required(values: Mapping[str, str], name: str, env_file: str | Path | None) -> str:
    value = values.get(name, "").strip()
    if not value:
        where = (
            f"the environment or {Path(env_file).resolve()}" if env_file is not None else "the environment"
        )
        raise CredentialsError(f"{name} is not set: export it or add '{name}=...' to {where}")
    return value


def load_tradier_credentials(
    *,
    live: bool = False,
    env_file: str | Path | None = ".env",
    environ: Mapping[str, str] | None = None,
) -> TradierCredentials:
    """Tradier credentials; the sandbox unless ``live=True`` is passed explicitly.

    Raises CredentialsError when a variable is missing, or when ``TRADIER_BASE_URL`` points at the live
    API while ``live`` is False (a stray variable must not turn paper trading into real trading).
    """
    values = read_environment(env_file, environ)
    api_key = _required(values, "TRADIER_API_KEY", env_file)
    account_id = _required(values, "TRADIER_ACCOUNT_ID", env_file)
    base_url = values.get("TRADIER_BASE_URL", "").strip().rstrip("/") or (
        TRADIER_LIVE_URL if live else TRADIER_SANDBOX_URL
    )
    creds = TradierCredentials(api_key=SecretStr(api_key), account_id=account_id, base_url=base_url)
    if creds.is_live and not live:
        raise CredentialsError(
            f"TRADIER_BASE_URL={base_url} is the live (real money) API but live trading was not requested; "
            f"unset it to use the sandbox ({TRADIER_SANDBOX_URL}) or pass live=True"
        )
    return creds


def load_tradelocker_credentials(
    *,
    live: bool = False,
    env_file: str | Path | None = ".env",
    environ: Mapping[str, str] | None = None,
) -> TradeLockerCredentials:
    """TradeLocker credentials; the demo environment unless ``live=True`` is passed explicitly."""
    values = read_environment(env_file, environ)
    username = _required(values, "TRADELOCKER_USERNAME", env_file)
    password = _required(values, "TRADELOCKER_PASSWORD", env_file)
    server = _required(values, "TRADELOCKER_SERVER", env_file)
    env = values.get("TRADELOCKER_ENV", "").strip().rstrip("/")
    if not env:
        env = TRADELOCKER_LIVE_URL if live else TRADELOCKER_DEMO_URL
    elif env.lower() == "demo":
        env = TRADELOCKER_DEMO_URL
    elif env.lower() == "live":
        env = TRADELOCKER_LIVE_URL
    elif not urlparse(env).scheme:
        raise CredentialsError(f"TRADELOCKER_ENV={env!r} is not valid: expected 'demo', 'live' or a URL")
    acc_num_text = values.get("TRADELOCKER_ACC_NUM", "").strip()
    try:
        acc_num = int(acc_num_text) if acc_num_text else None
    except ValueError:
        raise CredentialsError(
            f"TRADELOCKER_ACC_NUM={acc_num_text!r} is not an integer account number"
        ) from None
    creds = TradeLockerCredentials(
        username=username, password=SecretStr(password), server=server, environment_url=env, acc_num=acc_num
    )
    if creds.is_live and not live:
        raise CredentialsError(
            f"TRADELOCKER_ENV={env} is the live (real money) environment but live trading was not requested; "
            f"set TRADELOCKER_ENV=demo or pass live=True"
        )
    return creds


__all__ = [
    "TRADELOCKER_DEMO_URL",
    "TRADELOCKER_LIVE_URL",
    "TRADIER_LIVE_URL",
    "TRADIER_SANDBOX_URL",
    "CredentialsError",
    "TradeLockerCredentials",
    "TradierCredentials",
    "is_live_url",
    "load_tradelocker_credentials",
    "load_tradier_credentials",
    "read_environment",
]
