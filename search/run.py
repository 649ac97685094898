"""The search driver: ``search run`` as a function.

The driver holds the Optuna study and is the only process that writes to its storage. It asks trials
in fixed-size batches, sends them to an executor (inline or Ray), and tells results back one by one in
trial-number order as soon as they are in, each after its record file is written. The sampler works on
an in-memory mirror of the study (:mod:`search.mirror`) and the storage is written in batches
(:mod:`search.drive`, :mod:`search.batch_storage`): a stop (Ctrl-C, SIGTERM, an error) writes every
finished trial; a crash (SIGKILL, power loss) loses at most the finished trials not yet written, which
are still RUNNING in the storage and simply re-run by the next run, like the trials it interrupted.

Determinism (same space, seed and trial count -> the same trials whatever the executor or worker count):
batches have a fixed size (``batch_size``, default 8) independent of the workers; two batches are in
flight; batch ``k + 2`` is asked right after the last trial of batch ``k`` is told, and before any trial
of batch ``k + 1`` is told (tells go in trial-number order). So when each batch is asked the study holds
exactly the same finished and running trials, whichever worker finished first. The sampler is seeded
from the study seed (see :mod:`search.study`); the evaluation itself has no randomness.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from data.safe import json_safe
from data.store import Store
from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.market import signal_symbol
from evaluator.trial import DIRECTIONS, check_metrics
from evaluator.walkforward import Fold, Holdout, walk_forward_layout
from evaluator.wfo import WFOResult, walk_forward_optimise
from search.drive import SearchSetupError, Teller, drive, feasible, graceful_stop, progress_bar
from search.executor import WorkContext, make_executor
from search.leases import DriverLease, live_leases
from search.mirror import make_mirror
from search.paths import default_data_root, studies_root
from search.provenance import (
    data_files,
    data_origin_fields,
    git_commit,
    manifest_window,
    package_versions,
    project_version,
    session_provenance,
)
from search.records import load_records, study_dir
from search.study import (
    SEED_PERSISTS,
    SESSION_PREFIX,
    StudyMismatch,
    check_same,
    count_finished,
    default_sampler,
    directions_of,
    make_sampler,
    mask_url,
    open_storage,
    recover_interrupted,
    session_seed,
    storage_url,
)
from spec_space.loader import load_space
from spec_space.space import DefaultSource, Objective, SpecSpace

__all__ = [
    "BATCH_SIZE",
    "RunConfig",
    "RunSummary",
    "SearchSetupError",
    "compute_wfo",
    "parse_duration",
    "parse_objectives",
    "run_search",
    "top_trials",
]

#: Trials asked per batch. Part of the determinism contract: change it and the trial sequence changes.
BATCH_SIZE = 8


@dataclass
class RunConfig:
    """Options of ``search run`` (see its ``--help``); ``None`` means the space's or the stored value."""

    space_path: Path
    trials: int
    study: str | None = None
    sampler: str | None = None
    objectives: Sequence[str] | None = None
    engine: str = "fast"
    workers: int = 1
    use_ray: bool = True
    ray_address: str | None = None
    storage: str | None = None
    data_root: str | None = None
    studies_root: Path | None = None
    seed: int | None = None
    timeout: float | None = None
    batch_size: int = BATCH_SIZE
    progress: bool = True


@dataclass
class RunSummary:
    study_name: str
    storage: str  # masked
    records_dir: Path
    target: int
    finished: int  # trials counting toward the target, after this run
    complete: int
    failed: int
    new_trials: int  # told in this run
    recovered: list[int]
    elapsed: float
    stopped: str  # "budget", "timeout", "interrupted", "already done"
    wfo: WFOResult | None = None
    sampler: str = ""
    executor: str = ""
    first_error: str | None = None
    errors: int = 0  # trials of this run that raised (a subset of failed: not e.g. a fold with no trades)
    timings: dict[str, float] = field(default_factory=dict)
    study: optuna.Study | None = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------ parsing

_DURATION = re.compile(
    r"^\s*(?:(?P<h>\d+(?:\.\d+)?)h)?\s*(?:(?P<m>\d+(?:\.\d+)?)m)?\s*(?:(?P<s>\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1h30m"``; ``ValueError`` otherwise."""
    match = _DURATION.match(text or "")
    if not text or not text.strip() or match is None or not any(match.groupdict().values()):
        raise ValueError(f"duration {text!r}: expected e.g. 90s, 15m, 2h or 1h30m")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    seconds = parts.get("h", 0.0) * 3600 + parts.get("m", 0.0) * 60 + parts.get("s", 0.0)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


_DIRECTION_WORDS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def parse_objectives(items: Sequence[str]) -> list[Objective]:
    """``["sharpe", "max_drawdown", "exposure:min"]`` -> objectives (metric's natural direction by default)."""
    objectives = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        metric, _, word = item.partition(":")
        metric = metric.strip()
        if word:
            direction = _DIRECTION_WORDS.get(word.strip().lower())
            if direction is None:
                raise ValueError(f"objective {item!r}: direction must be max or min, got {word!r}")
        else:
            direction = DIRECTIONS.get(metric)
            if direction is None:
                raise ValueError(
                    f"objective {item!r}: metric {metric!r} has no default direction; "
                    f"write it as {metric}:max or {metric}:min (metrics with one: {', '.join(DIRECTIONS)})"
                )
        objectives.append(Objective(metric=metric, direction=direction))
    if not objectives:
        raise ValueError("--objectives is empty; name at least one metric, e.g. --objectives sharpe")
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"--objectives names a metric twice: {', '.join(names)}")
    return objectives


# ------------------------------------------------------------------------------------------ setup


@dataclass
class _Prepared:
    space: SpecSpace
    space_text: str
    space_path: Path
    store: Store
    symbol: str
    folds: list[Fold]
    holdout: Holdout
    manifest_hash: str
    manifest_window: tuple[dt.date, dt.date]
    data_files: dict[str, str]


def _prepare(config: RunConfig) -> _Prepared:
    space = load_space(config.space_path)
    if config.objectives:
        space = space.model_copy(update={"objectives": parse_objectives(config.objectives)})
    check_metrics(space)
    store = Store(config.data_root or default_data_root())
    spec = space.build(space.suggest(DefaultSource(space)))
    symbol = signal_symbol(spec)
    window = space.data
    sessions = store.sessions(symbol, window.start, window.end)
    if not sessions:
        raise SearchSetupError(
            f"{config.space_path}: data: no {symbol} sessions between {window.start} and {window.end} in the "
            f"store at {store.root}; ingest them (search data ingest --dst {store.root} --tickers {symbol}) "
            "or pass --data with the right store"
        )
    try:
        layout = walk_forward_layout(sessions, space.walk_forward)
    except ValueError as exc:
        raise SearchSetupError(f"{config.space_path}: walk_forward: {exc}") from None
    first, last = manifest_window(space, spec)  # the same warm-up load_market reads
    manifest = store.manifest_hash(first, last, [symbol])
    return _Prepared(
        space,
        Path(config.space_path).read_text(),
        Path(config.space_path),
        store,
        symbol,
        layout.folds,
        layout.holdout,
        manifest,
        (first, last),
        data_files(store, first, last, [symbol]),
    )


def _fold_dicts(folds: Sequence[Fold]) -> list[dict[str, Any]]:
    return [
        {
            "index": f.index,
            "train_start": str(f.train_start),
            "train_end": str(f.train_end),
            "test_start": str(f.test_start),
            "test_end": str(f.test_end),
        }
        for f in folds
    ]


def holdout_dict(holdout: Holdout) -> dict[str, Any]:
    return {"start": str(holdout.start), "end": str(holdout.end), "days": holdout.days}


def provenance(prep: _Prepared, config: RunConfig, *, seed: int, records_dir: Path) -> dict[str, Any]:
    """Study-level provenance: what was searched, on which data, by which code. No secrets, no env values."""
    space = prep.space
    return {
        "space_name": space.name,
        "space_hash": space.content_hash(),
        "space_path": str(prep.space_path.resolve()),
        "space_text": prep.space_text,
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in space.objectives],
        "constraints": [c.model_dump() for c in space.constraints],
        "seed": seed,
        "engine": config.engine,
        "batch_size": config.batch_size,
        "fill_model_version": FILL_MODEL_VERSION,
        "data_root": mask_url(prep.store.root),
        "data_symbol": prep.symbol,
        "data_window": [str(space.data.start), str(space.data.end)],
        "data_manifest_hash": prep.manifest_hash,
        "data_manifest_window": [str(d) for d in prep.manifest_window],
        "data_files": prep.data_files,
        **data_origin_fields(prep.store),
        "walk_forward": space.walk_forward.model_dump(),
        "folds": _fold_dicts(prep.folds),
        "holdout": holdout_dict(prep.holdout),
        "records_dir": str(records_dir.resolve()),
        "project_version": project_version(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "git": git_commit(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _open_study(
    config: RunConfig, prep: _Prepared, url: str, root: Path
) -> tuple[optuna.Study, int, Path, str, int, DriverLease]:
    """Create or resume the study; returns (study, study seed, records folder, sampler name, sampler seed,
    this driver's lease)."""
    name = config.study or prep.space.name
    storage = open_storage(url)
    directions = [o.direction for o in prep.space.objectives]
    if config.sampler:  # a sampler that cannot run this study fails before the study is created
        make_sampler(config.sampler, seed=0, n_objectives=len(directions))
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=directions,
        load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(seed=0),  # replaced below once the seed is known
    )
    # registered before the seed is chosen: of two drivers starting together, at least one sees the other
    lease = DriverLease(study)
    lease.beat(force=True)
    existing = study.get_trials(deepcopy=False)
    fresh = "space_hash" not in study.user_attrs
    if directions_of(study) != directions:
        raise StudyMismatch(
            f"study {name!r} optimises {directions_of(study)}, this run's objectives "
            f"({', '.join(o.metric for o in prep.space.objectives)}) need {directions}; "
            "use the study's objectives or a new --study name"
        )
    if fresh:
        seed = 0 if config.seed is None else config.seed
        records_dir = study_dir(root, name)
        attrs = provenance(prep, config, seed=seed, records_dir=records_dir)
        # space_hash goes last: it is what marks a study as begun, so a driver starting meanwhile finds either
        # every attribute (seed, folds, ...) or none, and then writes the same ones itself
        for key in sorted(attrs, key=lambda k: k == "space_hash"):
            study.set_user_attr(key, json_safe(attrs[key]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # names the dashboard shows on its axes instead of "Objective 0"
            study.set_metric_names([f"IS {o.metric}" for o in prep.space.objectives])
    else:
        attrs = study.user_attrs
        new_study_hint = "re-run with the original settings, or start a new study with --study NAME"
        check_same(
            study,
            "space_hash",
            prep.space.content_hash(),
            f"the space ({prep.space_path}) changed since the study began; {new_study_hint}",
        )
        check_same(
            study,
            "objectives",
            [{"metric": o.metric, "direction": o.direction} for o in prep.space.objectives],
            new_study_hint,
        )
        check_same(study, "engine", config.engine, new_study_hint)
        check_same(study, "batch_size", config.batch_size, new_study_hint)
        check_same(
            study,
            "folds",
            _fold_dicts(prep.folds),
            f"the data now gives different walk-forward folds; {new_study_hint}",
        )
        check_same(
            study,
            "holdout",
            holdout_dict(prep.holdout),
            f"the data now gives a different holdout window; {new_study_hint}",
        )
        if config.seed is not None:
            check_same(study, "seed", config.seed, new_study_hint)
        seed = int(attrs["seed"])
        stored_dir = attrs.get("records_dir")
        records_dir = Path(stored_dir) if stored_dir else study_dir(root, name)
    sampler_name = config.sampler or study.user_attrs.get("sampler") or default_sampler(len(directions))
    sampler_seed = session_seed(seed, sampler_name, len(existing))
    if live_leases(study, own_key=lease.key) and sampler_name not in SEED_PERSISTS:
        # another driver is on this study: the same seed would replay its draws (one driver alone keeps
        # the determinism contract; several together are not reproducible anyway)
        sampler_seed = int(np.random.SeedSequence([sampler_seed, os.getpid()]).generate_state(1)[0])
    study.sampler = make_sampler(sampler_name, seed=sampler_seed, n_objectives=len(directions))
    if fresh:
        study.set_user_attr("sampler", sampler_name)
    return study, seed, records_dir, sampler_name, sampler_seed, lease


def run_search(config: RunConfig, *, echo: Callable[[str], None] = print) -> RunSummary:
    """Run (or resume) a study until it holds ``config.trials`` finished trials; see the module docstring."""
    if config.trials < 1:
        raise ValueError(f"--trials must be at least 1, got {config.trials}")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {config.batch_size}")
    if not config.use_ray and config.workers != 1:
        raise ValueError(
            f"--no-ray evaluates trials inline in one process, but --workers is {config.workers}; "
            "use --workers 1 with --no-ray, or drop --no-ray to run on Ray"
        )
    started = time.monotonic()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    root = Path(config.studies_root) if config.studies_root is not None else studies_root()
    prep = _prepare(config)
    url = storage_url(config.storage, root)
    study, seed, records_dir, sampler_name, sampler_seed, lease = _open_study(config, prep, url, root)
    recovered = recover_interrupted(study, records_dir, own_key=lease.key)
    trials = study.get_trials(deepcopy=False)
    finished_before = count_finished(trials)
    running_elsewhere = sum(t.state == TrialState.RUNNING for t in trials)  # live drivers' trials
    to_ask = max(0, config.trials - finished_before - running_elsewhere)
    summary = RunSummary(
        study_name=study.study_name,
        storage=mask_url(url),
        records_dir=records_dir,
        target=config.trials,
        finished=finished_before,
        complete=0,
        failed=0,
        new_trials=0,
        recovered=recovered,
        elapsed=0.0,
        stopped="already done" if to_ask == 0 else "budget",
        sampler=sampler_name,
        study=study,
    )
    if recovered:
        echo(
            f"resumed: {len(recovered)} trial(s) left running by a stopped driver marked FAIL and re-enqueued"
        )
    if to_ask:
        ctx = WorkContext(
            space=prep.space,
            space_hash=prep.space.content_hash(),
            store_root=prep.store.root,
            folds=tuple(prep.folds),
            engine=config.engine,
        )
        t0 = time.monotonic()
        executor = make_executor(
            ctx,
            workers=config.workers,
            use_ray=config.use_ray,
            address=config.ray_address,
            batch_size=config.batch_size,
        )
        summary.timings["executor_start_s"] = time.monotonic() - t0
        summary.executor = f"{executor.kind} x{executor.workers}"
        if executor.workers > 2 * config.batch_size:
            echo(
                f"note: {executor.workers} workers but only 2 x {config.batch_size} trials in flight; "
                "raise --batch-size to use them all (a different batch size gives different trials)"
            )
        echo(
            f"study {study.study_name!r} on {summary.storage}: {finished_before} finished, {to_ask} to run "
            f"({sampler_name}, seed {seed}, {summary.executor}, {len(prep.folds)} folds, engine {config.engine})"
        )
        session = session_provenance(
            space=prep.space,
            seed=seed,
            sampler=sampler_name,
            sampler_seed=sampler_seed,
            engine=config.engine,
            store=prep.store,
            symbol=prep.symbol,
            manifest_hash=prep.manifest_hash,
            window=prep.manifest_window,
        )
        entry: dict[str, Any] = {
            "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "sampler": sampler_name,
            "sampler_seed": sampler_seed,
            "trials_before": len(trials),
            "executor": summary.executor,
            "target": config.trials,
            "project_version": session["project_version"],
            "git": session["git"],
            "fill_model_version": session["fill_model_version"],
            "data_manifest_hash": prep.manifest_hash,
        }
        if prep.manifest_hash != study.user_attrs.get("data_manifest_hash"):
            # a resumed session on changed data: its trials name this hash, and this list names the files
            entry["data_files"] = prep.data_files
            echo(
                f"note: the data store changed since the study began (manifest {prep.manifest_hash[:12]}, "
                f"study {str(study.user_attrs.get('data_manifest_hash'))[:12]}); this session's trials record "
                "the data they ran on"
            )
        # one key per session: two drivers starting together never overwrite each other's entry
        study.set_user_attr(f"{SESSION_PREFIX}{entry['started_utc']}:{lease.key}", json_safe(entry))
        mirror = make_mirror(
            study.directions, study.sampler, trials, study._storage.get_study_system_attrs(study._study_id)
        )
        teller = Teller(study, mirror, prep.space, records_dir, session, trials)
        # the loaded trials live as long as the run: kept out of the garbage collector's full passes, which
        # otherwise walk all of them again and again (the driver's cost per trial grew with the study)
        gc.collect()
        gc.freeze()
        bar = progress_bar(config.trials, finished_before, config.progress)
        deadline = None if config.timeout is None else started + config.timeout
        t0 = time.monotonic()
        try:
            with graceful_stop() as stop:
                summary.stopped = drive(
                    study,
                    mirror,
                    prep.space,
                    executor,
                    teller,
                    target=config.trials,
                    lease=lease,
                    batch_size=config.batch_size,
                    deadline=deadline,
                    bar=bar,
                    stop=stop,
                )
        except KeyboardInterrupt:
            summary.stopped = "interrupted"
        finally:
            gc.unfreeze()
            bar.close()
            executor.close()
            try:
                # the finished trials still in memory are written before the lease ends (else they look stale)
                teller.flush()
            finally:
                with contextlib.suppress(Exception):
                    lease.end()
                if summary.stopped == "interrupted" or sys.exc_info()[0] is not None:
                    recover_interrupted(study, records_dir)  # this driver's trials (its lease has ended)
        summary.timings["loop_s"] = time.monotonic() - t0
        summary.complete, summary.failed = teller.complete, teller.failed
        summary.new_trials = teller.complete + teller.failed
        summary.first_error = teller.first_error
        summary.errors = teller.errors
    lease.end()
    summary.finished = count_finished(study.get_trials(deepcopy=False))
    summary.wfo = compute_wfo(study, records_dir)
    if summary.wfo is not None:
        study.set_user_attr("wfo", json_safe(wfo_attr(summary.wfo)))
    summary.elapsed = time.monotonic() - started
    return summary


# ------------------------------------------------------------------------------------------ results


def top_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE trials: feasible first; one objective by value, several by Pareto front
    (ties and the rest by the first objective)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    front: set[int] = set()
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}

    def key(t: FrozenTrial) -> tuple[bool, bool, float, int]:
        return (not feasible(t), t.number not in front, -sign * t.values[0], t.number)

    return sorted(complete, key=key)[:k]


def compute_wfo(study: optuna.Study, records_dir: Path) -> WFOResult | None:
    """Walk-forward optimisation over the study's COMPLETE trials, on the first objective."""
    numbers = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not numbers:
        return None
    records, _missing = load_records(records_dir, numbers)
    if not records:
        return None
    objectives = study.user_attrs.get("objectives") or []
    metric = objectives[0]["metric"] if objectives else "sharpe"
    direction = directions_of(study)[0]
    return walk_forward_optimise(records, metric=metric, direction=direction)  # type: ignore[arg-type]


def wfo_attr(result: WFOResult) -> dict[str, Any]:
    return {
        "metric": result.metric,
        "direction": result.direction,
        "choices": [
            {"fold": c.fold, "trial": c.trial, "is_value": c.is_value, "val_value": c.val_value}
            for c in result.choices
        ],
        "skipped_folds": result.skipped_folds,
        "summary": result.summary(),
    }
