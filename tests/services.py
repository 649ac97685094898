"""Real servers for the scale-out tests, each started on a free 127.0.0.1 port and stopped afterwards.

* PostgreSQL: Debian's ``postgresql`` package (``initdb`` / ``pg_ctl``), a throw-away cluster in a temp
  folder, run as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root).
* S3: moto's server mode (``moto[server]``, ``ThreadedMotoServer``) in this process.
* Ray: ``ray start --head --port ...`` as a separate process tree, ``ray stop`` afterwards.

A component that is not installed skips its tests, unless ``FARM_REQUIRE_SERVICES=1`` (``.ci/run`` sets
it, after installing them), where it fails them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing(what: str) -> None:
    """Skip (or fail under ``FARM_REQUIRE_SERVICES=1``) a test whose real component is not installed."""
    if os.environ.get("FARM_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} (FARM_REQUIRE_SERVICES=1: .ci/run installs it)")
    pytest.skip(what)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextlib.contextmanager
def postgres_server(user: str = "farm", password: str = "s3cret-pw", db: str = "farm") -> Iterator[str]:
    """A running PostgreSQL; yields ``postgresql://user:password@127.0.0.1:PORT/db`` (trust auth: any
    password is accepted, so the URL still shows what masking must hide)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="farm-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if not runuser:
            missing("running PostgreSQL as root needs runuser (util-linux)")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data = folder / "data"
    port = free_port()
    log = folder / "server.log"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        check=True, capture_output=True, env=env, timeout=90,
    )  # fmt: skip
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()
        yield f"postgresql://{user}:{password}@127.0.0.1:{port}/{db}"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL (the caller sets the AWS_* variables)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing("moto[server] is not installed (pip install -e '.[dev]')")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[str]:
    """``ray start --head --block`` on a free port, in its own process group; yields the address.

    Stopped by signalling that process group only (``ray stop`` would stop every Ray on the machine,
    other users' too).
    """
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(ray).exists():
        missing("the ray CLI is not installed")
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    temp = tempfile.mkdtemp(prefix="farm-ray-")
    proc = subprocess.Popen(
        [ray, "start", "--head", "--block", f"--port={port}", f"--num-cpus={num_cpus}",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
         "--object-store-memory=200000000", "--node-ip-address=127.0.0.1",
         f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
         f"--min-worker-port={free_port()}", "--max-worker-port=0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start ended: {proc.stdout.read().decode()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.5)
        yield address
    finally:
        # the head's processes (GCS, raylet, workers) all descend from this one process we started
        import psutil

        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for child in tree:
            with contextlib.suppress(psutil.Error):
                child.kill()
        proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
