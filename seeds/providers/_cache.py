"""Answer cache: one JSON file per (provider, model, system, prompt, schema).

Re-running a seed with the same inputs costs nothing and returns the same answer, which also
makes a seed run reproducible. Files are written atomically (temp file + ``os.replace``) so
parallel workers sharing the directory never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_CACHE_DIR = Path("studies/.llm_cache")
CACHE_DIR_ENV = "FARM_LLM_CACHE_DIR"
_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$FARM_LLM_CACHE_DIR``, else ``studies/.llm_cache`` under the working directory."""
    raw = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(raw) if raw else DEFAULT_CACHE_DIR


def cache_key(*, provider: str, model: str, system: str, prompt: str, schema: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the inputs that decide the answer."""
    canonical = json.dumps(
        {"provider": provider, "model": model, "system": system, "prompt": prompt, "schema": schema},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        # two-character fan-out keeps directories small after thousands of calls
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored result dict, or ``None`` on a miss or an unreadable file (then asked again)."""
        path = self.path_for(key)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or payload.get("version") != _FORMAT_VERSION:
            return None
        result = payload.get("result")
        return result if isinstance(result, dict) else None

    def put(self, key: str, result: dict[str, Any], *, request: dict[str, Any]) -> Path:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": _FORMAT_VERSION, "key": key, "request": request, "result": result}
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, ensure_ascii=False, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
