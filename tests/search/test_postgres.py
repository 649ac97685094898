"""PostgreSQL for real: both URL forms, a one-line error for an unreachable server, two `search run`
processes sharing one study's budget, and `search dashboard` on that storage."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from search.study import StorageUnreachable, count_finished, open_storage, study_sessions
from tests.services import free_port

pytestmark = pytest.mark.slow

RUN = [sys.executable, "-m", "search.cli", "run"]


def test_both_url_forms_open_the_same_storage(postgres_url):
    plain = postgres_url
    explicit = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    optuna.create_study(study_name="forms", storage=open_storage(plain)).optimize(lambda t: 1.0, n_trials=2)
    assert len(optuna.load_study(study_name="forms", storage=open_storage(explicit)).trials) == 2


def test_an_unreachable_server_is_one_line_naming_the_host_with_the_password_masked():
    port = free_port()  # nothing listens there
    url = f"postgresql://farm:hunter2@127.0.0.1:{port}/farm"
    with pytest.raises(StorageUnreachable) as info:
        open_storage(url)
    message = str(info.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "hunter2" not in message
    assert "farm:***@" in message
    cli = subprocess.run(
        [*RUN, "--space", "nowhere.yaml", "--trials", "1", "--storage", url, "--no-ray"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode != 0
    assert "hunter2" not in cli.stdout + cli.stderr and "Traceback" not in cli.stderr


def test_two_drivers_on_one_study_finish_exactly_n_trials(tmp_path, postgres_url, space_file, sample_store):
    n = 100  # long enough (several seconds) that both drivers are surely running together
    storage = postgres_url
    command = [
        *RUN, "--space", str(space_file), "--trials", str(n), "--no-ray", "--workers", "1", "--study", "two",
        "--storage", storage, "--data", sample_store, "--sampler", "random", "--no-progress", "--top", "0",
    ]  # fmt: skip
    env = {**os.environ, "FARM_STUDIES": str(tmp_path / "studies")}
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
        assert "hunter2" not in out and "s3cret-pw" not in out
    study = optuna.load_study(study_name="two", storage=open_storage(postgres_url))
    trials = study.get_trials()
    assert count_finished(trials) == n, Counter(t.state.name for t in trials)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # no trial lost to a false "crash leftover" verdict (failures are evaluation errors or race losers
    # withdrawn before evaluation)
    assert not [t for t in trials if t.user_attrs.get("interrupted")]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # no duplicate: both drivers told trials, together exactly n, and they did not replay each other's draws
    told = [sum(map(int, re.search(r"\+(\d+) complete, \+(\d+) failed", out).groups())) for out in outputs]
    assert sum(told) == n and min(told) > 0, (told, outputs)
    params = Counter(tuple(sorted(t.params.items())) for t in complete)
    assert max(params.values()) == 1, params.most_common(3)
    leases = {k: v for k, v in study.user_attrs.items() if k.startswith("driver:")}
    assert len(leases) == 2 and all(v.get("ended") for v in leases.values())
    # both run sessions are on record (two drivers starting together once lost one of them)
    assert len(study_sessions(study.user_attrs)) == 2


def test_the_dashboard_serves_the_postgres_storage(postgres_url):
    from search.dashboard import dashboard_server

    optuna.create_study(study_name="dash", storage=open_storage(postgres_url)).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=3
    )
    server = dashboard_server(open_storage(postgres_url), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/studies", timeout=30) as r:
            names = [s["study_name"] for s in json.load(r)["study_summaries"]]
        assert "dash" in names
    finally:
        server.shutdown()
