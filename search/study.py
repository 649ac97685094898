"""Optuna studies of a spec space: storage URLs, the sampler registry, creating/resuming a study.

Storage (``--storage``):

* nothing: SQLite at ``<studies root>/farm.db`` (the folder is created);
* any SQLAlchemy URL Optuna's ``RDBStorage`` takes (``sqlite:///path.db``, ``postgresql://...``);
* ``journal:PATH``: Optuna's journal file (one host only; use an RDB for several hosts).

* ``postgresql://`` (and ``postgres://``) URLs use psycopg2 (``postgresql+psycopg2://``), the driver the
  project installs; SQLAlchemy would otherwise pick psycopg 3. A server that cannot be reached is a
  :class:`StorageUnreachable` naming the host (password masked).

Resume: a trial still RUNNING whose driver is gone (SIGKILL, power loss; see :mod:`search.leases` for how
a dead driver is told from one still running on another host) is recovered by
:func:`recover_interrupted`: marked FAIL with ``user_attrs["interrupted"] = True`` and its parameters
enqueued again, so the budget of N trials counts only trials that really finished
(:func:`count_finished`). This includes finished trials the driver had not yet written to the storage
(it writes them in batches, see :mod:`search.drive`): they are re-run. Several drivers may run one study
at once (see :mod:`search.leases`).

Seeds: the sampler of a fresh study is seeded with the study seed; a resumed session derives its seed
from ``(seed, trials already in the study)`` so it does not replay the first session's draws. The QMC
sampler keeps the study seed (it continues its sequence from a counter kept in the study).
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    NSGAIISampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from data.safe import mask_url
from search.leases import is_discounted, stale_running

__all__ = [
    "SAMPLERS",
    "SEED_PERSISTS",
    "SESSION_PREFIX",
    "SamplerInfo",
    "StorageUnreachable",
    "StudyMismatch",
    "count_finished",
    "default_sampler",
    "make_sampler",
    "mask_url",
    "open_storage",
    "recover_interrupted",
    "session_seed",
    "storage_url",
    "study_sessions",
]

JOURNAL_PREFIX = "journal:"


class StorageUnreachable(ValueError):
    """The study storage's database server cannot be reached (one line: host, masked URL, reason)."""


class StudyMismatch(ValueError):
    """An existing study was created with settings that a resumed run would contradict."""


# ----------------------------------------------------------------------------------------- storage


def storage_url(storage: str | None, studies_root: str | Path) -> str:
    """The storage URL actually used: the default SQLite file when ``storage`` is None (folder created)."""
    if storage:
        return storage
    root = Path(studies_root)
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'farm.db').as_posix()}"


def open_storage(url: str) -> BaseStorage:
    """An Optuna storage for ``url`` (see the module docstring for accepted forms)."""
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :]).expanduser()
        if not path.name:
            raise ValueError(f"storage {url!r}: give a file after 'journal:', e.g. journal:studies/farm.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(
            f"storage {mask_url(url)!r} is neither a database URL (sqlite:///studies/farm.db, "
            "postgresql://user@host/db) nor journal:PATH"
        )
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # the dashboard may read while the driver writes: wait for the lock rather than fail at once
        storage = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened while Optuna set up the schema lack the pragmas
        return storage
    url = _with_driver(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("postgresql+psycopg2://"):
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    for attempt in range(5):
        try:
            return RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            raise StorageUnreachable(_unreachable(url, exc)) from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # two drivers creating the schema of a new database at once: the loser finds it made
            if attempt == 4:
                raise
            time.sleep(0.2 + 0.3 * attempt)
    raise AssertionError("unreachable")


def _with_driver(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+psycopg2://`` (psycopg 3 is not installed)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain) :]
    return url


def _unreachable(url: str, exc: Exception) -> str:
    try:
        parsed = sqlalchemy.engine.make_url(url)
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    except Exception:  # noqa: BLE001 - the message still names the masked URL
        where = "?"
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    return f"cannot reach the study storage at {where} ({mask_url(url)}): {mask_url(first)}"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL lets the dashboard read while the driver writes; synchronous=NORMAL drops the fsync per commit
    # (half the time of a tell here) yet a committed trial still survives the process being killed;
    # only an OS crash or power cut can lose the last commits. WAL needs a local disk, not NFS.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# ----------------------------------------------------------------------------------------- samplers


@dataclass(frozen=True)
class SamplerInfo:
    """A sampler of the registry: how to build it and what it supports."""

    factory: Callable[[int, int], BaseSampler]  # (seed, number of objectives) -> sampler
    multi_objective: bool
    needs: str | None = None  # an optional module the sampler imports
    summary: str = ""


def _tpe(seed: int, n_objectives: int) -> BaseSampler:
    # constant_liar (Optuna 5's default, kept explicit): trials asked in one batch are still RUNNING when
    # the next is asked; the liar keeps them from all landing on the same point.
    return TPESampler(seed=seed, constant_liar=True, multivariate=n_objectives == 1)


def _nsga2(seed: int, n_objectives: int) -> BaseSampler:
    # Constraints reach NSGA-II through trial.set_constraint (Optuna 5 deprecated constraints_func).
    return NSGAIISampler(seed=seed, population_size=24)


def _cmaes(seed: int, n_objectives: int) -> BaseSampler:
    return CmaEsSampler(seed=seed, warn_independent_sampling=False)


def _random(seed: int, n_objectives: int) -> BaseSampler:
    return RandomSampler(seed=seed)


def _qmc(seed: int, n_objectives: int) -> BaseSampler:
    # scrambled Sobol with an explicit seed: every session continues the same sequence
    return QMCSampler(qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False)


def _gp(seed: int, n_objectives: int) -> BaseSampler:
    return GPSampler(seed=seed)


SAMPLERS: dict[str, SamplerInfo] = {
    "tpe": SamplerInfo(_tpe, True, summary="Tree-structured Parzen estimator (default, one objective)"),
    "nsga2": SamplerInfo(_nsga2, True, summary="NSGA-II genetic search (default, several objectives)"),
    "cmaes": SamplerInfo(_cmaes, False, needs="cmaes", summary="CMA evolution strategy (one objective)"),
    "random": SamplerInfo(_random, True, summary="uniform random search"),
    "qmc": SamplerInfo(_qmc, True, summary="scrambled Sobol quasi-random search"),
    "gp": SamplerInfo(_gp, True, needs="torch", summary="Gaussian-process Bayesian optimisation"),
}

#: Samplers whose seed must stay the study seed across sessions (their state is keyed by it).
SEED_PERSISTS = frozenset({"qmc"})


def default_sampler(n_objectives: int) -> str:
    return "nsga2" if n_objectives > 1 else "tpe"


def make_sampler(name: str, *, seed: int, n_objectives: int) -> BaseSampler:
    """Build sampler ``name``; a ``ValueError`` says what is wrong and what to do instead."""
    info = SAMPLERS.get(name)
    if info is None:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    if n_objectives > 1 and not info.multi_objective:
        raise ValueError(
            f"sampler {name!r} supports one objective but the study has {n_objectives}; "
            "pass --objectives with one metric, or use --sampler nsga2 or tpe"
        )
    if info.needs and importlib.util.find_spec(info.needs) is None:
        raise ValueError(
            f"sampler {name!r} needs the {info.needs!r} package, which is not installed; "
            f"pip install {info.needs} (CPU build is enough) or choose another sampler"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return info.factory(seed, n_objectives)


def session_seed(seed: int, sampler: str, trials_in_study: int) -> int:
    """The sampler seed of a session (see the module docstring)."""
    if trials_in_study == 0 or sampler in SEED_PERSISTS:
        return seed
    return int(np.random.SeedSequence([seed, trials_in_study]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------- study


def check_same(study: optuna.Study, key: str, wanted: Any, hint: str) -> None:
    """Raise :class:`StudyMismatch` if study attr ``key`` exists and differs from ``wanted``."""
    stored = study.user_attrs.get(key)
    if stored is not None and stored != wanted:
        raise StudyMismatch(
            f"study {study.study_name!r} was created with {key} = {stored!r}, this run has {wanted!r}; {hint}"
        )


def directions_of(study: optuna.Study) -> list[str]:
    return [d.name.lower() for d in study.directions]


#: Study user attributes ``session:<started utc>:<driver lease key>``: one per ``search run`` session.
SESSION_PREFIX = "session:"


def study_sessions(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's run sessions, oldest first: the ``session:*`` attributes (one key per session, so two
    drivers starting together cannot lose one) after the single ``sessions`` list older studies kept."""
    legacy = [s for s in attrs.get("sessions") or [] if isinstance(s, dict)]
    keyed = [attrs[k] for k in sorted(attrs) if k.startswith(SESSION_PREFIX) and isinstance(attrs[k], dict)]
    return legacy + sorted(keyed, key=lambda s: str(s.get("started_utc", "")))


# ----------------------------------------------------------------------------------------- resume


def is_interrupted(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("interrupted"))


def count_finished(trials: Sequence[FrozenTrial]) -> int:
    """Trials that count toward the budget: COMPLETE, PRUNED and evaluation failures, not interrupted (or
    withdrawn, see :mod:`search.leases`) ones."""
    return sum(
        1
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not is_discounted(t))
    )


def recover_interrupted(
    study: optuna.Study,
    records_folder: Path | None = None,
    *,
    own_key: str | None = None,
    trials: Sequence[FrozenTrial] | None = None,
) -> list[int]:
    """Mark trials left RUNNING by a dead driver FAIL (``interrupted``) and enqueue their parameters again.

    Only stale trials are touched (:func:`search.leases.stale_running`): another live driver's trials, and
    ``own_key``'s, are left alone. Returns the numbers of the recovered trials.
    """
    recovered = []
    storage = study._storage
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale_running(study, trials, own_key=own_key):
        try:
            storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            storage.set_trial_user_attr(
                trial._trial_id, "fail_reason", "the driver stopped before this trial finished; re-enqueued"
            )
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another driver recovered it first (or it was told meanwhile)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        if records_folder is not None:
            # a record written just before the crash belongs to a trial that was never told
            from search.records import record_path

            record_path(records_folder, trial.number).unlink(missing_ok=True)
        recovered.append(trial.number)
    return recovered

