"""S3 for real: a local S3-compatible server (moto's server mode) serves Polygon-layout flat files;
`search data ingest --src s3://... --dst s3://...` and `search run --data s3://...` work against it, with
the endpoint and credentials from the environment and never stored."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest

from search.study import open_storage, storage_url
from tests.search.conftest import END, START

pytestmark = pytest.mark.slow

SECRET = "s3-secret-never-stored"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """moto on a free port, a bucket holding synthetic SPY flat files; yields the environment to pass."""
    import pyarrow.fs as pafs

    from data.synth import generate
    from tests.services import s3_server

    with s3_server() as endpoint:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "farm-test-key",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        flat = tmp_path_factory.mktemp("s3flat")
        generate(flat, tickers=["SPY"], start=START, end=END, seed=11, options=False)
        s3 = pafs.S3FileSystem(
            endpoint_override=endpoint, access_key="farm-test-key", secret_key=SECRET, region="us-east-1",
            allow_bucket_creation=True,
        )
        s3.create_dir("flat")
        s3.create_dir("store")
        pafs.copy_files(str(flat), "flat/polygon", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)
        yield env


def test_ingest_from_s3_to_s3_then_search_run_reads_the_s3_store(tmp_path, s3_env, space_file):
    ingest = subprocess.run(
        [sys.executable, "-m", "search.cli", "data", "ingest", "--src", "s3://flat/polygon",
         "--dst", "s3://store/spy", "--tickers", "SPY", "--workers", "2"],
        env=s3_env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    env = {**s3_env, "FARM_STUDIES": str(tmp_path / "studies")}
    run = subprocess.run(
        [sys.executable, "-m", "search.cli", "run", "--space", str(space_file), "--trials", "4", "--no-ray",
         "--workers", "1", "--data", "s3://store/spy", "--sampler", "random", "--no-progress", "--top", "0"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4/4 trials finished" in run.stdout
    study = optuna.load_study(study_name="sma_small", storage=open_storage(storage_url(None, tmp_path / "studies")))
    assert study.user_attrs["data_root"] == "s3://store/spy"
    stored = repr(study.user_attrs) + repr([t.user_attrs for t in study.trials])
    for secret in (SECRET, "farm-test-key", s3_env["AWS_ENDPOINT_URL"]):
        assert secret not in stored
        assert secret not in ingest.stdout + ingest.stderr + run.stdout + run.stderr
    records = "".join(p.read_text(errors="replace") for p in (tmp_path / "studies").rglob("*.json"))
    assert SECRET not in records
