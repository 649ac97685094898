"""Provenance: what produced a result (code, packages, space, spec, data, seed, engine), stored with it.

Three levels, each a plain JSON dict (no secrets: no environment values, storage and data URLs masked):

* **study** (:func:`search.run.provenance`, study user attributes): the space (text and content hash),
  seed, engine, fill-model version, the data store's manifest hash for the window the trials read and
  the source files behind it (``data_files``: flat-file relpath -> sha256), where the data came from
  (``data_synthetic``, ``data_origin``: :func:`data_origin_fields`; :func:`data_origin` reads the line
  back), the code (:func:`code_provenance`);
* **trial** (:func:`trial_provenance`, the ``provenance`` key of the trial's record meta): the concrete
  spec JSON of the trial and its hash, plus the session's seed, engine, fill model, data manifest hash
  and code, so a trial of a resumed study names the code and data it actually ran on;
* **run folder** (``search backtest``): ``provenance.json`` with the same fields for one backtest.

``search reproduce`` compares these with the present (see :mod:`search.reproduce`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data.store import Store, data_origin_label, read_manifest, resolve_root
from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.market import signal_symbol
from search.study import mask_url
from spec_space.models import StrategySpec
from spec_space.space import SpecSpace

__all__ = [
    "PACKAGES",
    "PROJECT",
    "PROVENANCE_FORMAT",
    "code_provenance",
    "data_files",
    "data_origin",
    "data_origin_fields",
    "diff_data_files",
    "git_commit",
    "manifest_window",
    "package_versions",
    "project_version",
    "provenance_lines",
    "spec_hash",
    "trial_provenance",
    "warmup_days",
]

PROJECT = "strategy-search-farm"
#: Bumped when the fields below change meaning (readers of older provenance check it).
PROVENANCE_FORMAT = 1
#: Packages whose versions can change a result: the optimiser, the engines and the data readers.
PACKAGES = ("optuna", "lumibot", "numba", "polars", "ray", "numpy", "pandas", "pyarrow", "optuna-dashboard")


# ------------------------------------------------------------------------------------------ code


def project_version() -> str | None:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> dict[str, Any] | None:
    """The checkout this code runs from (``{"commit", "dirty"}``), or None outside a git checkout.

    Cached per process: it describes the code this process loaded, which a later checkout does not change.
    """
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)} if commit else None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def code_provenance() -> dict[str, Any]:
    """The code of this process: project version, git commit, package and Python versions, fill model."""
    return {
        "project_version": project_version(),
        "git": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "fill_model_version": FILL_MODEL_VERSION,
    }


# ------------------------------------------------------------------------------------------ spec, data


def spec_hash(spec: StrategySpec) -> str:
    """sha256 of the spec's canonical JSON (sorted keys): two trials with equal hashes trade alike."""
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def warmup_days(spec: StrategySpec) -> int:
    """Calendar days of indicator warm-up ``evaluator.market.load_market`` reads before a window."""
    return 400 if spec.timeframe == "1d" else 10


def manifest_window(space: SpecSpace, spec: StrategySpec) -> tuple[dt.date, dt.date]:
    """The store window a study's market is loaded from: the space's data window plus warm-up."""
    return space.data.start - dt.timedelta(days=warmup_days(spec)), space.data.end


def _partition_markers(tickers: Sequence[str]) -> set[str]:
    # the store's own rule, so the file list matches what Store.manifest_hash hashes
    from data.store import _partition_markers as markers

    return markers(tickers)


def data_files(store: Store, start: dt.date, end: dt.date, tickers: Sequence[str]) -> dict[str, str]:
    """Source flat files (relpath -> sha256) whose rows reach ``tickers`` between ``start`` and ``end``:
    the files :meth:`data.store.Store.manifest_hash` hashes, listed so a change can be named per file."""
    fs, base = resolve_root(store.root)
    manifest = read_manifest(fs, base)
    markers = _partition_markers(tickers)
    out: dict[str, str] = {}
    for relpath in sorted(manifest["files"]):
        entry = manifest["files"][relpath]
        if not start <= dt.date.fromisoformat(entry["date"]) <= end:
            continue
        if any(m in o for o in entry.get("outputs", []) for m in markers):
            out[relpath] = str(entry["sha256"])
    return out


def data_origin_fields(store: Store) -> dict[str, Any]:
    """``data_synthetic`` (what generated the store's data: seed, window, planted edge; None for real flat
    files, see :meth:`data.store.Store.synthetic`) and ``data_origin``, its one-line label such as
    "synthetic data, planted edge zrce:0.5"."""
    synthetic = store.synthetic()
    return {"data_synthetic": synthetic, "data_origin": data_origin_label(synthetic)}


def data_origin(attrs: Mapping[str, Any]) -> str:
    """The data-origin line of a study's (or backtest's) provenance, for report headers:
    "synthetic data, planted edge zrce:0.5", "synthetic data, null market (no planted edge)",
    "flat files (no synthetic marker: real data)"; provenance recorded before the field existed says so."""
    if "data_origin" in attrs:
        return str(attrs["data_origin"])
    return "data origin not recorded (provenance older than the data_origin field)"


def diff_data_files(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, list[str]]:
    """Files whose content changed, that were added and that were removed (each list sorted)."""
    return {
        "changed": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
    }


def session_provenance(
    *,
    space: SpecSpace,
    seed: int,
    sampler: str,
    sampler_seed: int,
    engine: str,
    store: Store,
    symbol: str,
    manifest_hash: str,
    window: tuple[dt.date, dt.date],
) -> dict[str, Any]:
    """What every trial told in one ``search run`` session shares (see :func:`trial_provenance`)."""
    return {
        "format": PROVENANCE_FORMAT,
        "space_name": space.name,
        "space_hash": space.content_hash(),
        "seed": seed,
        "sampler": sampler,
        "sampler_seed": sampler_seed,
        "engine": engine,
        "data_root": mask_url(store.root),
        "data_symbol": symbol,
        "data_window": [str(space.data.start), str(space.data.end)],
        "data_manifest_window": [str(window[0]), str(window[1])],
        "data_manifest_hash": manifest_hash,
        "data_origin": data_origin_label(store.synthetic()),
        **code_provenance(),
    }


def trial_provenance(session: Mapping[str, Any], spec: StrategySpec) -> dict[str, Any]:
    """A trial's provenance: the session's plus its concrete spec (JSON) and the spec's hash."""
    return {
        **session,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec_hash(spec),
        "recorded_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def backtest_provenance(
    *,
    spec: StrategySpec,
    space: SpecSpace | None,
    space_path: Path,
    store: Store,
    start: dt.date,
    end: dt.date,
    engine: str,
) -> dict[str, Any]:
    """Provenance of one ``search backtest`` run (its folder's ``provenance.json``)."""
    window = (start - dt.timedelta(days=warmup_days(spec)), end)
    symbol = signal_symbol(spec)
    try:
        manifest: str | None = store.manifest_hash(window[0], window[1], [symbol])
        files: dict[str, str] | None = data_files(store, window[0], window[1], [symbol])
    except LookupError:  # a store without a manifest (written by hand): say so rather than fail the run
        manifest, files = None, None
    return {
        "format": PROVENANCE_FORMAT,
        "spec_path": str(Path(space_path).resolve()),
        "space_name": space.name if space is not None else None,
        "space_hash": space.content_hash() if space is not None else None,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec_hash(spec),
        "seed": None,  # one backtest draws nothing at random
        "engine": engine,
        "data_root": mask_url(store.root),
        "data_symbol": symbol,
        "data_window": [str(start), str(end)],
        "data_manifest_window": [str(window[0]), str(window[1])],
        "data_manifest_hash": manifest,
        "data_files": files,
        **data_origin_fields(store),
        **code_provenance(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------------------------ display


def _short(value: Any, n: int = 12) -> str:
    return "-" if not value else str(value)[:n]


def _code_text(version: Any, git: Any) -> str:
    text = f"{PROJECT} {version or '?'}"
    if isinstance(git, Mapping) and git.get("commit"):
        text += f" (git {_short(git['commit'])}{', uncommitted changes' if git.get('dirty') else ''})"
    return text


def provenance_lines(
    study_attrs: Mapping[str, Any],
    trial_meta: Mapping[str, Any] | None = None,
    *,
    study_name: str = "<study>",
) -> list[str]:
    """A compact provenance block for ``search best``: the study's, then the best trial's own (it differs
    when a resumed study ran later trials on other code or data) and its ``search reproduce`` verdict."""
    a = study_attrs
    window = " .. ".join(a.get("data_window") or []) or "-"
    files = a.get("data_files")
    packages = a.get("packages") or {}
    wanted = ("optuna", "lumibot", "numba", "polars", "ray")
    lines = [
        "provenance:",
        f"  code     {_code_text(a.get('project_version'), a.get('git'))}, python {a.get('python', '-')}, "
        f"fill model {a.get('fill_model_version', '-')}, engine {a.get('engine', '-')}",
        f"  space    {a.get('space_name', '-')} sha256 {_short(a.get('space_hash'))}, seed {a.get('seed', '-')}, "
        f"sampler {a.get('sampler', '-')}",
        f"  data     {a.get('data_symbol', '-')} {window} from {mask_url(str(a.get('data_root', '-')))}, "
        f"manifest {_short(a.get('data_manifest_hash'))}"
        + (f" ({len(files)} source files)" if isinstance(files, Mapping) else ""),
        f"  origin   {data_origin(a)}",
        "  packages " + ", ".join(f"{k} {packages.get(k) or '-'}" for k in wanted),
    ]
    if not trial_meta:
        return lines
    number = trial_meta.get("number")
    prov = trial_meta.get("provenance") or {}
    if prov:
        line = f"  trial #{number}: spec sha256 {_short(prov.get('spec_hash'))}"
        differs = [
            f"{label} {_short(prov.get(key))}"
            for key, label in (("data_manifest_hash", "data manifest"), ("fill_model_version", "fill model"))
            if prov.get(key) != a.get(key)
        ]
        old_commit, commit = (prov.get("git") or {}).get("commit"), (a.get("git") or {}).get("commit")
        if prov.get("project_version") != a.get("project_version") or old_commit != commit:
            differs.append(_code_text(prov.get("project_version"), prov.get("git")))
        if differs:
            line += "; ran on " + ", ".join(differs)
        lines.append(line)
    else:
        lines.append(f"  trial #{number}: its record holds no provenance (made before records carried it)")
    verdicts = a.get("reproduce") if isinstance(a.get("reproduce"), Mapping) else {}
    entry = next((c for c in verdicts.get("candidates") or [] if c.get("trial") == number), None)
    if entry is None:
        lines.append(f"  reproduce: not run (search reproduce --study {study_name} --trial {number})")
    else:
        state = "passed" if entry.get("passed") else "FAILED"
        lines.append(f"  reproduce: {state} {entry.get('reproduced_utc', '')}: {entry.get('summary', '')}")
    return lines
