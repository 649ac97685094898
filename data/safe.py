"""Values safe to store or print: finite numbers or None, JSON-ready data (no NaN), URLs without passwords.

Every package that writes JSON or shows a storage / database / object-store URL uses these two, so
``search`` (study attributes, gate artifacts) and ``brokers`` (the deployments database) agree.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["finite_float", "json_safe", "mask_url"]


def finite_float(value: Any) -> float | None:
    """``value`` as a finite float, else None (nan, inf, None, text that is not a number)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def json_safe(value: Any) -> Any:
    """JSON-ready, recursively: nan/inf -> None (browsers and strict parsers reject them), numpy scalars
    and arrays -> Python, dates and paths -> strings, mapping keys -> strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | Path):
        return str(value)
    return value


_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@]*):(?P<secret>[^@]*)@")


def mask_url(url: str) -> str:
    """``postgresql://user:***@host/db``: a URL safe to print or store (passwords never leave the process)."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
