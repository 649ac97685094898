"""A Ray cluster on this machine: a head started with `ray start --head`, `search run --ray-address` from a
separate driver process, and a worker process killed mid-trial is retried by Ray with no trial lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from search.study import count_finished, open_storage, storage_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_address():
    from tests.services import ray_head

    with ray_head(num_cpus=2) as address:
        yield address


def _busy_workers(root_pid: int) -> list[psutil.Process]:
    """Ray worker processes of our head (descendants of its process) running a trial right now."""
    busy = []
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            if " ".join(proc.cmdline()).startswith("ray::evaluate_task"):
                busy.append(proc)
        except psutil.Error:
            continue
    return busy


def test_search_run_on_a_ray_head_survives_a_worker_killed_mid_trial(tmp_path, ray_address, space_file, sample_store):
    n = 12
    env = {**os.environ, "FARM_STUDIES": str(tmp_path / "studies")}
    command = [
        sys.executable, "-m", "search.cli", "run", "--space", str(space_file), "--trials", str(n),
        "--ray-address", ray_address, "--workers", "2", "--data", sample_store, "--sampler", "random",
        "--no-progress", "--top", "0",
    ]  # fmt: skip
    head_pid = _head_pid(ray_address)
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and driver.poll() is None:
            busy = _busy_workers(head_pid)
            if busy:
                killed = busy[0].pid
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.01)
        output = driver.communicate(timeout=120)[0]
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed is not None, "no Ray worker was seen running a trial"
    assert driver.returncode == 0, output
    assert f"{n}/{n} trials finished" in output and "ray x2" in output
    trials = optuna.load_study(
        study_name="sma_small", storage=open_storage(storage_url(None, tmp_path / "studies"))
    ).get_trials()
    assert count_finished(trials) == n
    # the killed worker's trial was retried by Ray: nothing failed for it, nothing re-enqueued
    assert not [t for t in trials if t.state == TrialState.FAIL and "retries" in str(t.user_attrs)]
    assert not [t for t in trials if t.user_attrs.get("interrupted")]
    workers = {t.user_attrs["info"]["worker"] for t in trials if t.state == TrialState.COMPLETE}
    assert str(killed) not in {w.split("@")[0] for w in workers}


def _head_pid(address: str) -> int:
    """The `ray start --block` process this module started (the head's processes descend from it)."""
    port = address.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "ray start" in cmdline.replace("/ray start", "ray start") and f"--port={port}" in cmdline:
            return proc.info["pid"]
    raise AssertionError(f"no ray head process for {address}")
