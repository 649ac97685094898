"""scripts/demo.sh's arguments: checked before anything is installed or generated (the run itself is
the README's demo, minutes long, and not part of the suite)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


def demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEMO), *args], capture_output=True, text=True, timeout=30,
        env={**os.environ, "DEMO_CHECK_ONLY": "1", **env},
    )


def test_defaults_are_the_zrce_plant_at_strength_one_and_200_trials() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PLANT", "TRIALS", "SAMPLE_DATA")}
    done = subprocess.run(["bash", str(DEMO)], capture_output=True, text=True, timeout=30,
                          env={**env, "DEMO_CHECK_ONLY": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "plant zrce:1, 200 trials, sample data in sample_data"


@pytest.mark.parametrize("plant, shown", [("none", "none"), ("zrce:0.5", "zrce:0.5"), ("zrce:2", "zrce:2")])
def test_plant_and_trials_from_the_environment(plant: str, shown: str) -> None:
    done = demo(PLANT=plant, TRIALS="30", SAMPLE_DATA="/tmp/x")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"plant {shown}, 30 trials, sample data in /tmp/x"


@pytest.mark.parametrize(
    "env, says",
    [
        ({"PLANT": "forex_trend"}, "only the zrce plant (or none) applies"),
        ({"PLANT": "zrce:-1"}, "PLANT='zrce:-1'"),
        ({"PLANT": "zrce:strong"}, "a number >= 0"),
        ({"TRIALS": "0"}, "TRIALS='0'"),
        ({"TRIALS": "many"}, "whole number of trials"),
    ],
)
def test_bad_settings_stop_with_status_2_and_say_what_to_set(env: dict[str, str], says: str) -> None:
    done = demo(**env)
    assert done.returncode == 2 and says in done.stderr, (done.returncode, done.stderr)


def test_help_and_stray_arguments() -> None:
    shown = demo("--help")
    assert shown.returncode == 0 and "PLANT=none" in shown.stdout and "TRIALS" in shown.stdout
    stray = demo("500")
    assert stray.returncode == 2 and "takes no arguments" in stray.stderr
