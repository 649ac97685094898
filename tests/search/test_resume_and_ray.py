"""Slow end-to-end checks: a SIGKILLed `search run` resumes to N, and Ray gives the same trials as inline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.records import record_path
from search.run import RunConfig, run_search
from search.study import count_finished, open_storage, storage_url

# `search run` itself (the command object search.cli registers), without importing every other sub-command
RUN = [sys.executable, "-c", "from search.run_cli import run; run(prog_name='search run')"]


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    except KeyError:  # not created yet
        return []


@pytest.mark.slow
def test_sigkill_mid_run_loses_no_completed_trial_and_the_same_command_resumes_to_n(
    tmp_path, space_file, sample_store
):
    n = 60
    # finished trials reach the storage in batches (search.drive); small ones here, so the kill lands
    # between two of them: the unwritten finished trials are then still RUNNING and re-run like the rest
    env = {**os.environ, "FARM_STUDIES": str(tmp_path / "studies"), "FARM_FLUSH_TRIALS": "3"}
    command = [
        *RUN, "--space", str(space_file), "--trials", str(n), "--no-ray", "--workers", "1",
        "--data", sample_store, "--sampler", "random", "--no-progress", "--top", "0",
    ]  # fmt: skip
    url = storage_url(None, tmp_path / "studies")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"search run ended before it was killed:\n{proc.stdout.read().decode()}")
            if sum(t.state == TrialState.COMPLETE for t in _trials(url, "sma_small")) >= 5:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed = _trials(url, "sma_small")
    done_before = {t.number: (t.params, t.values) for t in killed if t.state == TrialState.COMPLETE}
    running_before = {t.number: t.params for t in killed if t.state == TrialState.RUNNING}
    assert 5 <= len(done_before) < n
    assert running_before, "the driver always has a batch in flight; the kill must have left some RUNNING"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "re-enqueued" in resumed.stdout
    trials = _trials(url, "sma_small")
    assert count_finished(trials) == n
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    by_number = {t.number: t for t in trials}
    for number, (params, values) in done_before.items():  # every completed trial is still there, unchanged
        assert by_number[number].state == TrialState.COMPLETE
        assert (by_number[number].params, by_number[number].values) == (params, values)
    for number, params in running_before.items():  # interrupted trials were failed and run again
        assert by_number[number].state == TrialState.FAIL and by_number[number].user_attrs["interrupted"]
        retries = [t for t in trials if t.user_attrs.get("retry_of") == number]
        assert [t.state for t in retries] == [TrialState.COMPLETE], (number, params, retries)
        # a kill between ask() and the last suggest leaves some parameters unset: those are drawn afresh
        assert params.items() <= retries[0].params.items(), (number, params, retries[0].params)
    records = tmp_path / "studies" / "sma_small"
    assert all(record_path(records, t.number).exists() for t in trials if t.state == TrialState.COMPLETE)


@pytest.mark.slow
def test_ctrl_c_tells_finished_trials_re_enqueues_the_rest_and_exits_130(tmp_path, space_file, sample_store):
    n = 400  # far more than run before the interrupt lands (60 trials take about a second here)
    env = {**os.environ, "FARM_STUDIES": str(tmp_path / "studies"), "FARM_FLUSH_TRIALS": "3"}
    command = [
        *RUN, "--space", str(space_file), "--trials", str(n), "--no-ray", "--workers", "1",
        "--data", sample_store, "--sampler", "random", "--no-progress", "--top", "0",
    ]  # fmt: skip
    url = storage_url(None, tmp_path / "studies")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while sum(t.state == TrialState.COMPLETE for t in _trials(url, "sma_small")) < 5:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "run the same command again to resume" in output
    stopped = _trials(url, "sma_small")
    assert not [t for t in stopped if t.state == TrialState.RUNNING]
    failed = [t for t in stopped if t.state == TrialState.FAIL]
    # the interrupt is never mistaken for a trial error (Ctrl-C inside a numba kernel raises SystemError)
    assert failed and all(t.user_attrs.get("interrupted") for t in failed)
    waiting = [t for t in stopped if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in waiting) == [t.number for t in failed]
    assert count_finished(stopped) < n

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert count_finished(_trials(url, "sma_small")) == n


@pytest.mark.slow
def test_ray_with_two_workers_gives_the_same_trials_as_inline(tmp_path, space_file, sample_store):
    def run(name: str, use_ray: bool, workers: int) -> list[optuna.trial.FrozenTrial]:
        config = RunConfig(
            space_path=space_file,
            trials=20,
            study=name,
            sampler="tpe",  # 10 random start-up trials, then the model: both phases must agree
            batch_size=4,
            seed=42,
            use_ray=use_ray,
            workers=workers,
            data_root=sample_store,
            studies_root=tmp_path / "studies",
            progress=False,
        )
        summary = run_search(config, echo=lambda _: None)
        assert summary.executor == ("ray x2" if use_ray else "inline x1")
        return _trials(storage_url(None, tmp_path / "studies"), name)

    inline = run("inline", use_ray=False, workers=1)
    on_ray = run("on_ray", use_ray=True, workers=2)
    assert len(inline) == len(on_ray) == 20
    workers = {t.user_attrs["info"]["worker"] for t in on_ray}
    assert len(workers) == 2 and os.getpid() not in {int(w.split("@")[0]) for w in workers}
    for a, b in zip(inline, on_ray, strict=True):
        assert a.number == b.number and a.state == b.state == TrialState.COMPLETE
        assert a.params == b.params
        assert a.values == b.values
        assert a.constraints == b.constraints
        assert a.user_attrs["is_mean"] == b.user_attrs["is_mean"]
        assert a.user_attrs["val_folds"] == b.user_attrs["val_folds"]
    assert len({tuple(sorted(t.params.items())) for t in inline}) == 20
    assert Path(tmp_path / "studies" / "on_ray" / "trials").is_dir()
