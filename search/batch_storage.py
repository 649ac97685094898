"""Batched writes to an Optuna storage: a batch of new RUNNING trials, or of finished trials, in one write.

Optuna's storage API writes one field per call, and every call is its own transaction: asking and
telling one trial of this project took about ten commits (the trial, each parameter, four user
attributes, a constraint, the sampler's system attributes, the tell), 17-30 ms per trial on SQLite.
The driver instead writes

* :func:`create_running`: the trials of one asked batch, with their parameters and distributions,
  created RUNNING, in one transaction (so a killed driver's trials are still seen and recovered);
* :func:`finish`: a batch of finished trials (state, values, user and system attributes), in one
  transaction.

On an RDB storage (SQLite, PostgreSQL) the rows are written with a handful of bulk statements in one
session, the study row locked as Optuna itself does when it numbers a trial; on the journal file the
batch is appended as one write of several log lines (the journal's own operations, replayed by every
reader as usual). Any other storage falls back to Optuna's ordinary one-field calls.

:func:`budget_counts` is the matching cheap read: what the shared trial budget needs (see
:mod:`search.leases`) without loading every finished trial, which at 10,000 trials took longer than
the trials themselves.

Both reach into Optuna internals (the ORM models and the journal's log operations of Optuna 5.1);
``tests/search/test_batch_storage.py`` compares what they write with what Optuna's own calls write,
field by field, on every storage kind, so an Optuna upgrade that changes them fails there first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "BudgetCounts",
    "FinishedTrial",
    "NewTrial",
    "budget_counts",
    "create_running",
    "discounted_numbers",
    "finish",
    "unwrap",
]


def unwrap(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's per-study cache (``optuna.create_study`` wraps an RDB storage in one)."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


@dataclass
class NewTrial:
    """A trial to create RUNNING: its parameters (external values) and their distributions."""

    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinishedTrial:
    """What finishing one trial writes: state, values (COMPLETE only), user and system attributes."""

    trial_id: int
    state: TrialState
    values: Sequence[float] | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class BudgetCounts:
    """The study's trials as the budget sees them."""

    finished: int  # counting toward the budget (see search.study.count_finished)
    running: int
    waiting: int
    discounted: list[int]  # numbers of interrupted or withdrawn trials, ascending


def budget_counts(storage: BaseStorage, study_id: int) -> BudgetCounts:
    """Counts of the finished trials that count, the RUNNING and WAITING ones, and the discounted numbers
    (three small queries on an RDB storage, whatever the study's size)."""
    storage = unwrap(storage)
    if isinstance(storage, RDBStorage):
        return _rdb_counts(storage, study_id)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    discounted = [t.number for t in trials if _discounted(t.state, t.user_attrs)]
    return BudgetCounts(
        finished=sum(t.state.is_finished() for t in trials) - len(discounted),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        waiting=sum(t.state == TrialState.WAITING for t in trials),
        discounted=discounted,
    )


def discounted_numbers(storage: BaseStorage, study_id: int) -> list[int]:
    """Numbers of the interrupted or withdrawn trials, ascending (one small query on an RDB storage)."""
    storage = unwrap(storage)
    if isinstance(storage, RDBStorage):
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(storage.scoped_session) as session:
            return _rdb_discounted(session, study_id)
    failed = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.FAIL,))
    return [t.number for t in failed if _discounted(t.state, t.user_attrs)]


def _discounted(state: TrialState, user_attrs: dict[str, Any]) -> bool:
    # search.leases.is_discounted on the raw fields (kept in step with it)
    return state == TrialState.FAIL and bool(user_attrs.get("interrupted") or user_attrs.get("withdrawn"))


def _rdb_discounted(session: Any, study_id: int) -> list[int]:
    from optuna.storages._rdb import models

    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    flagged = session.execute(
        sqlalchemy.select(trial.number, attr.value_json)
        .join(attr, attr.trial_id == trial.trial_id)
        .where(
            trial.study_id == study_id,
            trial.state == TrialState.FAIL,
            attr.key.in_(("interrupted", "withdrawn")),
        )
    ).all()
    return sorted({number for number, value in flagged if json.loads(value)})


def _rdb_counts(storage: RDBStorage, study_id: int) -> BudgetCounts:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial = models.TrialModel
    with _create_scoped_session(storage.scoped_session) as session:
        by_state = dict(
            session.execute(
                sqlalchemy.select(trial.state, sqlalchemy.func.count(trial.trial_id))
                .where(trial.study_id == study_id)
                .group_by(trial.state)
            ).all()
        )
        discounted = _rdb_discounted(session, study_id)
    finished = sum(by_state.get(s, 0) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return BudgetCounts(
        finished=finished - len(discounted),
        running=by_state.get(TrialState.RUNNING, 0),
        waiting=by_state.get(TrialState.WAITING, 0),
        discounted=discounted,
    )


def create_running(storage: BaseStorage, study_id: int, trials: Sequence[NewTrial]) -> list[tuple[int, int]]:
    """Create ``trials`` RUNNING in one write; returns their ``(trial_id, number)`` in the same order."""
    if not trials:
        return []
    storage = unwrap(storage)
    if isinstance(storage, RDBStorage):
        return _rdb_create(storage, study_id, trials)
    if isinstance(storage, JournalStorage):
        return _journal_create(storage, study_id, trials)
    created = []
    for new in trials:
        trial_id = storage.create_new_trial(study_id, template_trial=_template(new))
        created.append((trial_id, storage.get_trial_number_from_id(trial_id)))
    return created


def finish(storage: BaseStorage, trials: Sequence[FinishedTrial]) -> list[int]:
    """Write ``trials`` finished in one write. Trials already finished meanwhile (another driver took a
    dead-looking driver's trial) are left as they are; their ids are returned."""
    if not trials:
        return []
    storage = unwrap(storage)
    if isinstance(storage, RDBStorage):
        return _rdb_finish(storage, trials)
    if isinstance(storage, JournalStorage):
        return _journal_finish(storage, trials)
    skipped = []
    for done in trials:
        if storage.get_trial(done.trial_id).state.is_finished():
            skipped.append(done.trial_id)
            continue
        for key, value in done.user_attrs.items():
            storage.set_trial_user_attr(done.trial_id, key, value)
        for key, value in done.system_attrs.items():
            storage.set_trial_system_attr(done.trial_id, key, value)
        storage.set_trial_state_values(done.trial_id, done.state, _values(done))
    return skipped


def _values(done: FinishedTrial) -> list[float] | None:
    return [float(v) for v in done.values] if done.state == TrialState.COMPLETE and done.values else None


def _template(new: NewTrial) -> FrozenTrial:
    return FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        values=None,
        datetime_start=dt.datetime.now(),
        datetime_complete=None,
        params=dict(new.params),
        distributions=dict(new.distributions),
        user_attrs=dict(new.user_attrs),
        system_attrs=dict(new.system_attrs),
        intermediate_values={},
        trial_id=-1,
    )


# ------------------------------------------------------------------------------------------ RDB


def _rdb_create(storage: RDBStorage, study_id: int, trials: Sequence[NewTrial]) -> list[tuple[int, int]]:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        # the lock Optuna takes to number a trial: no other driver's trial of this study lands between ours
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        now = dt.datetime.now()
        rows = [
            models.TrialModel(study_id=study_id, number=None, state=TrialState.RUNNING, datetime_start=now)
            for _ in trials
        ]
        session.add_all(rows)
        session.flush()  # assigns the trial ids (one multi-row INSERT ... RETURNING)
        first = min(r.trial_id for r in rows)
        before = _trials_before(session, storage, study_id, first)
        # numbered in id order (Optuna's rule); rows stay in the callers' order, paired with their trials
        by_id = sorted(rows, key=lambda r: r.trial_id)
        for offset, row in enumerate(by_id):
            row.number = before + offset
        _ANCHORS[(storage.url, study_id)] = (by_id[-1].trial_id, by_id[-1].number)
        params, user, system = [], [], []
        for row, new in zip(rows, trials, strict=True):
            for name, value in new.params.items():
                dist = new.distributions[name]
                params.append(
                    {
                        "trial_id": row.trial_id,
                        "param_name": name,
                        "param_value": dist.to_internal_repr(value),
                        "distribution_json": distribution_to_json(dist),
                    }
                )
            user += _attr_rows(row.trial_id, new.user_attrs)
            system += _attr_rows(row.trial_id, new.system_attrs)
        _insert(session, models.TrialParamModel, params)
        _insert(session, models.TrialUserAttributeModel, user)
        _insert(session, models.TrialSystemAttributeModel, system)
        return [(r.trial_id, r.number) for r in rows]


#: (storage URL, study id) -> (trial id, number) of the last trial this process created there. Trials are never
#: deleted one by one, so the trials before a new id are that number + 1 plus those created after it.
_ANCHORS: dict[tuple[int, int], tuple[int, int]] = {}


def _trials_before(session: Any, storage: RDBStorage, study_id: int, first_id: int) -> int:
    """How many trials of the study have an id below ``first_id`` (Optuna's numbering rule). From the last
    anchor only the newer ids are counted: a primary-key range, not a scan of the whole study."""
    from optuna.storages._rdb import models

    trial = models.TrialModel
    anchor = _ANCHORS.get((storage.url, study_id))
    query = sqlalchemy.select(sqlalchemy.func.count(trial.trial_id)).where(
        trial.study_id == study_id, trial.trial_id < first_id
    )
    if anchor is not None and anchor[0] < first_id:
        # the anchor must still be that trial of that study (a database re-created under the same URL)
        stored = session.execute(
            sqlalchemy.select(trial.study_id, trial.number).where(trial.trial_id == anchor[0])
        ).one_or_none()
        if stored is not None and tuple(stored) == (study_id, anchor[1]):
            return anchor[1] + 1 + session.execute(query.where(trial.trial_id > anchor[0])).scalar_one()
    return session.execute(query).scalar_one()


def _attr_rows(trial_id: int, attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]


def _insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sqlalchemy.insert(model), rows)  # executemany: one round trip per batch


def _rdb_finish(storage: RDBStorage, trials: Sequence[FinishedTrial]) -> list[int]:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    ids = [t.trial_id for t in trials]
    with _create_scoped_session(storage.scoped_session) as session:
        rows = {
            r.trial_id: r
            for r in session.query(models.TrialModel)
            .filter(models.TrialModel.trial_id.in_(ids))
            .with_for_update()
        }
        skipped = [i for i in ids if i not in rows or rows[i].state.is_finished()]
        todo = [t for t in trials if t.trial_id not in skipped]
        if not todo:
            return skipped
        todo_ids = [t.trial_id for t in todo]
        # attributes are replaced, as Optuna's upsert does (a key set at creation may be set again)
        for model, attr in (
            (models.TrialUserAttributeModel, "user_attrs"),
            (models.TrialSystemAttributeModel, "system_attrs"),
        ):
            keyed = [(t.trial_id, k) for t in todo for k in getattr(t, attr)]
            if keyed:
                session.execute(
                    sqlalchemy.delete(model).where(
                        model.trial_id.in_(todo_ids), model.key.in_({k for _, k in keyed})
                    )
                )
            _insert(session, model, [r for t in todo for r in _attr_rows(t.trial_id, getattr(t, attr))])
        values = []
        for t in todo:
            for objective, value in enumerate(_values(t) or []):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                values.append(
                    {"trial_id": t.trial_id, "objective": objective, "value": stored, "value_type": kind}
                )
        _insert(session, models.TrialValueModel, values)
        now = dt.datetime.now()
        for t in todo:
            row = rows[t.trial_id]
            row.state = t.state
            row.datetime_complete = now
    return skipped


# ------------------------------------------------------------------------------------------ journal


def _journal_create(
    storage: JournalStorage, study_id: int, trials: Sequence[NewTrial]
) -> list[tuple[int, int]]:
    from optuna.storages.journal._storage import JournalOperation

    start = dt.datetime.now(tz=dt.UTC).isoformat(timespec="microseconds")
    with storage._thread_lock:
        worker = storage._replay_result.worker_id
        logs = [
            {
                "op_code": JournalOperation.CREATE_TRIAL,
                "worker_id": worker,
                "study_id": study_id,
                "datetime_start": start,
                "state": TrialState.RUNNING,
                "value": None,
                "values": None,
                "distributions": {k: distribution_to_json(d) for k, d in new.distributions.items()},
                "params": {k: new.distributions[k].to_internal_repr(v) for k, v in new.params.items()},
                "user_attrs": new.user_attrs,
                "system_attrs": new.system_attrs,
                "intermediate_values": {},
            }
            for new in trials
        ]
        # one append: the lines are contiguous in the file, so their replayed trial ids are consecutive
        storage._backend.append_logs(logs)
        storage._sync_with_backend()
        last = storage._replay_result._last_created_trial_id_by_this_process
        ids = range(last - len(trials) + 1, last + 1)
        return [(i, storage._replay_result.get_trial(i).number) for i in ids]


def _journal_finish(storage: JournalStorage, trials: Sequence[FinishedTrial]) -> list[int]:
    from optuna.storages.journal._storage import JournalOperation

    with storage._thread_lock:
        storage._sync_with_backend()
        result = storage._replay_result
        skipped = [t.trial_id for t in trials if result.get_trial(t.trial_id).state.is_finished()]
        worker = result.worker_id
        done_at = dt.datetime.now(tz=dt.UTC).isoformat(timespec="microseconds")
        logs: list[dict[str, Any]] = []
        for t in trials:
            if t.trial_id in skipped:
                continue
            base = {"worker_id": worker, "trial_id": t.trial_id}
            logs += [
                {**base, "op_code": JournalOperation.SET_TRIAL_USER_ATTR, "user_attr": {k: v}}
                for k, v in t.user_attrs.items()
            ]
            logs += [
                {**base, "op_code": JournalOperation.SET_TRIAL_SYSTEM_ATTR, "system_attr": {k: v}}
                for k, v in t.system_attrs.items()
            ]
            logs.append(
                {
                    **base,
                    "op_code": JournalOperation.SET_TRIAL_STATE_VALUES,
                    "state": t.state,
                    "values": _values(t),
                    "datetime_complete": done_at,
                }
            )
        if logs:
            storage._backend.append_logs(logs)
            storage._sync_with_backend()
    return skipped
