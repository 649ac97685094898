"""Several drivers on one study: driver leases, stale RUNNING trials, and the study-wide trial budget.

Each ``search run`` registers a *lease* in the study's user attributes (key ``driver:<host>:<pid>:<id>``):
its host, pid and process start time, a heartbeat time refreshed every :data:`HEARTBEAT_S` seconds
while it drives, and the numbers of the trials it has asked and not yet told. Distinct keys mean two
drivers never overwrite each other's lease, and the mechanism works the same on every Optuna storage
(SQLite, PostgreSQL, the journal file), unlike Optuna's own heartbeat (RDB storages only, and it fails
stale trials without re-queueing them).

A RUNNING trial is *stale* (left by a dead driver: recover it) when
* the lease that lists it has ended, or its driver is gone: on this host the pid is no longer that
  process (checked at once: the kill-and-resume case), elsewhere its heartbeat is older than
  :data:`GRACE_S`; or
* no lease lists it (a driver killed between ``ask`` and its lease update, or a study from before
  leases) and either no other driver is alive or the trial started more than :data:`GRACE_S` ago.

Budget of N trials shared by every driver: before asking a batch a driver asks at most
``N - (finished + RUNNING)`` trials; after asking, every trial is ranked by trial number among the
trials that count (everything but interrupted and withdrawn ones, WAITING included); a new trial
ranked N or beyond lost a race with another driver and is *withdrawn* (FAIL, ``withdrawn``, not
counted, never evaluated). Trial numbers are handed out in insertion order, so every driver ranks the
same way and the study ends with exactly N finished trials. The driver counts the study's trials in
full once a heartbeat; in between it takes the count from its last batch's numbers (every trial below
them is taken), which can only be too high, costing a withdrawn trial, never an extra one
(:mod:`search.drive`).

A driver's lease also lists the finished trials it has not yet written to the storage (they are written
in batches): they are RUNNING there, and only its death makes them stale, to be re-run.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "GRACE_S",
    "HEARTBEAT_S",
    "LEASE_PREFIX",
    "DriverLease",
    "counts_toward_budget",
    "live_leases",
    "over_budget",
    "ranked_over_budget",
    "stale_running",
]

LEASE_PREFIX = "driver:"
#: Seconds between heartbeats of a driving lease.
HEARTBEAT_S = float(os.environ.get("FARM_HEARTBEAT_S", "10"))
#: A lease whose heartbeat is older than this is dead (another host's driver); so is an unlisted
#: RUNNING trial that started longer ago than this while another driver is alive.
GRACE_S = float(os.environ.get("FARM_GRACE_S", "60"))


def _process_started(pid: int) -> float | None:
    try:
        import psutil

        return round(psutil.Process(pid).create_time(), 2)
    except Exception:  # noqa: BLE001 - gone, or not ours to see
        return None


class DriverLease:
    """This driver's lease on a study: register, beat (with the trials in flight), end."""

    def __init__(self, study: optuna.Study, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.study = study
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.key = f"{LEASE_PREFIX}{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.heartbeat_s = heartbeat_s
        self.running: list[int] = []
        self._last = 0.0
        self._started = _process_started(self.pid)

    def _write(self, ended: bool = False) -> None:
        value: dict[str, Any] = {
            "host": self.host,
            "pid": self.pid,
            "started": self._started,
            "beat": time.time(),
            "running": sorted(self.running),
        }
        if ended:
            value["ended"] = True
            value["running"] = []
        self.study.set_user_attr(self.key, value)
        self._last = time.monotonic()

    def beat(self, running: Iterable[int] | None = None, *, force: bool = False) -> None:
        """Refresh the lease when a heartbeat is due, or at once with ``force`` (new trials in flight)."""
        if running is not None:
            self.running = list(running)
        if force or time.monotonic() - self._last >= self.heartbeat_s:
            self._write()

    def end(self) -> None:
        """The driver is done: its still-RUNNING trials are stale from now on."""
        self._write(ended=True)


def _lease_live(value: Any, now: float, grace_s: float) -> bool:
    if not isinstance(value, dict) or value.get("ended"):
        return False
    if value.get("host") == socket.gethostname():
        pid = value.get("pid")
        if not isinstance(pid, int):
            return False
        started = _process_started(pid)
        if started is None or (value.get("started") is not None and started != value.get("started")):
            return False
    return now - float(value.get("beat") or 0.0) <= grace_s


def live_leases(study: optuna.Study, *, own_key: str | None = None, grace_s: float = GRACE_S) -> list[str]:
    """Keys of the other drivers alive on ``study``."""
    now = time.time()
    return [
        k
        for k, v in study.user_attrs.items()
        if k.startswith(LEASE_PREFIX) and k != own_key and _lease_live(v, now, grace_s)
    ]


def stale_running(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    *,
    own_key: str | None = None,
    grace_s: float = GRACE_S,
) -> list[FrozenTrial]:
    """RUNNING trials of ``trials`` left by dead drivers (see the module docstring); never ``own_key``'s."""
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return []
    now = time.time()
    leases = {k: v for k, v in study.user_attrs.items() if k.startswith(LEASE_PREFIX)}
    live = {k for k, v in leases.items() if k != own_key and _lease_live(v, now, grace_s)}
    owner: dict[int, str] = {}
    for key, value in leases.items():
        if isinstance(value, dict):
            for number in value.get("running") or []:
                owner[int(number)] = key
    other_alive = bool(live)
    stale = []
    for trial in running:
        key = owner.get(trial.number)
        if key == own_key and own_key is not None:
            continue
        if key is not None:
            if key not in live:
                stale.append(trial)
        elif not other_alive or _age(trial) > grace_s:
            stale.append(trial)
    return stale


def _age(trial: FrozenTrial) -> float:
    if trial.datetime_start is None:
        return float("inf")
    return (dt.datetime.now() - trial.datetime_start).total_seconds()  # Optuna stores local naive times


def is_discounted(trial: FrozenTrial) -> bool:
    """Interrupted (re-run elsewhere) or withdrawn (lost a budget race): not one of the N trials."""
    return trial.state == TrialState.FAIL and bool(
        trial.user_attrs.get("interrupted") or trial.user_attrs.get("withdrawn")
    )


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Holds or will hold one of the N places: finished, running or waiting, but not discounted."""
    return not is_discounted(trial)


def ranked_over_budget(trials: Sequence[FrozenTrial], candidates: Iterable[int], target: int) -> set[int]:
    """Of ``candidates`` (trial numbers), those ranked ``target`` or beyond among the counting trials."""
    counting = sorted(t.number for t in trials if counts_toward_budget(t))
    rank = {number: i for i, number in enumerate(counting)}
    return {n for n in candidates if rank.get(n, 0) >= target}


def over_budget(candidates: Iterable[int], discounted: Sequence[int], target: int) -> set[int]:
    """:func:`ranked_over_budget` from the discounted trial numbers alone: trial numbers are 0, 1, 2, ...
    so a trial's rank among the counting ones is its number less the discounted numbers below it."""
    ordered = sorted(discounted)
    skip = set(ordered)  # a discounted trial holds no place (as in ranked_over_budget)
    return {n for n in candidates if n not in skip and n - bisect.bisect_left(ordered, n) >= target}


def withdraw(study: optuna.Study, trial_id: int) -> None:
    storage = study._storage
    storage.set_trial_user_attr(trial_id, "withdrawn", True)
    storage.set_trial_user_attr(
        trial_id, "fail_reason", "another driver filled the study's trial budget first; not evaluated"
    )
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
