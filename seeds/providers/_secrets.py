"""API keys from the environment or a ``.env`` file, and masking so they never reach a log or message."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values, find_dotenv

_MASK = "***"


def find_env_file(env_file: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``.env`` to read: the one given, else the nearest one from the working directory upwards."""
    if env_file is not None:
        path = Path(env_file)
        return path if path.is_file() else None
    found = find_dotenv(usecwd=True)
    return Path(found) if found else None


def resolve_secret(
    names: Iterable[str],
    *,
    env_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None]:
    """First non-empty value among ``names``: the process environment wins over ``.env``.

    ``.env`` is read with ``dotenv_values`` rather than ``load_dotenv`` so nothing in ``os.environ``
    is ever set or overridden. Returns ``(value, where)`` with ``where`` like ``"env:OPENAI_API_KEY"``
    or ``".env:/path/.env:OPENAI_API_KEY"``; ``(None, None)`` when absent.
    """
    names = list(names)
    env = os.environ if environ is None else environ
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return value, f"env:{name}"
    path = find_env_file(env_file)
    if path is not None:
        values = dotenv_values(path)
        for name in names:
            value = (values.get(name) or "").strip()
            if value:
                return value, f".env:{path}:{name}"
    return None, None


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return text
