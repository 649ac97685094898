"""Driver leases: only a dead driver's RUNNING trials are recovered; the budget race is settled by number."""

from __future__ import annotations

import subprocess
import sys

import optuna
from optuna.trial import TrialState

from search.leases import DriverLease, ranked_over_budget, stale_running, withdraw
from search.study import count_finished, open_storage, recover_interrupted


def _study(tmp_path):
    return optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path}/s.db"))


def test_a_live_drivers_running_trial_is_left_alone_and_a_dead_ones_is_recovered(tmp_path):
    study = _study(tmp_path)
    peer = DriverLease(study)  # alive: this very process
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    peer.beat([trial.number], force=True)
    assert recover_interrupted(study) == []
    assert study.trials[trial.number].state == TrialState.RUNNING

    # a driver on this host whose process is gone: recovered at once, its parameters re-enqueued
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = DriverLease(study)
    dead.pid, dead._started = int(gone.stdout), None
    other = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    dead.beat([other.number], force=True)
    assert [t.number for t in stale_running(study, study.trials)] == [other.number]
    assert recover_interrupted(study) == [other.number]
    assert study.trials[other.number].user_attrs["interrupted"]
    assert study.trials[-1].state == TrialState.WAITING

    peer.end()  # an ended lease's trials are stale too
    assert recover_interrupted(study) == [trial.number]


def test_the_budget_race_is_settled_by_trial_number(tmp_path):
    study = _study(tmp_path)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    a, b = study.ask(), study.ask()  # two drivers each asked "the last" trial of a budget of 4
    assert ranked_over_budget(study.trials, [a.number, b.number], 4) == {b.number}
    withdraw(study, b._trial_id)
    study.tell(a, 0.5)
    assert count_finished(study.trials) == 4


def test_another_hosts_driver_is_dead_only_once_its_heartbeat_is_older_than_the_grace(tmp_path):
    import time

    study = _study(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    lease = {"host": "elsewhere", "pid": 1, "started": None, "running": [trial.number]}
    study.set_user_attr("driver:elsewhere:1:abc", {**lease, "beat": time.time() - 5})
    assert stale_running(study, study.trials, grace_s=60) == []
    study.set_user_attr("driver:elsewhere:1:abc", {**lease, "beat": time.time() - 120})
    assert [t.number for t in stale_running(study, study.trials, grace_s=60)] == [trial.number]
