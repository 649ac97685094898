"""Where runtime files go: the data store, study storage and run folders (never the working directory's root)."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

STUDIES_ROOT_ENV = "FARM_STUDIES"
DATA_ROOT_ENV = "FARM_DATA_ROOT"


def default_data_root() -> str:
    return os.environ.get(DATA_ROOT_ENV, "sample_data/store")


def studies_root() -> Path:
    return Path(os.environ.get(STUDIES_ROOT_ENV, "studies"))


def run_folder(kind: str, name: str) -> Path:
    """A fresh folder ``studies/<kind>/<name>_<UTC timestamp>`` for one run's artifacts."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    folder = studies_root() / kind / f"{safe}_{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder
