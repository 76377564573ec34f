"""The local-engine benchmark runs in quick mode and prints the JSON its README describes.

Only our engine runs here: the test environment does not install litestar-workflows.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_local.py"
QUICK_INSTANCES = 200
QUICK_ROUNDS = 2


def _run(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # stdout holds the JSON object and nothing else


@pytest.fixture(scope="module")
def report() -> dict:
    return _run("--quick", "--engines", "flowstar")


def test_reports_machine_config_and_targets(report: dict) -> None:
    assert report["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["machine"]["cpu_count"] >= 1
    assert report["config"]["instances"] == QUICK_INSTANCES
    assert report["config"]["rounds"] == QUICK_ROUNDS
    assert report["config"]["modes"] == ["sequential", "concurrent"]
    assert report["config"]["slice"] == {"sequential": 100, "concurrent": 100}
    assert report["targets"]["min_ratio"] == 1.0
    assert report["targets"]["goal_ratio"] == 1.5
    assert report["engines"]["flowstar"]["status"] == "ran"
    assert report["engines"]["litestar-workflows"]["status"] == "not requested"


@pytest.mark.parametrize("scenario", ["linear3", "human_roundtrip"])
@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_every_instance_of_ours_completes(report: dict, scenario: str, mode: str) -> None:
    result = report["scenarios"][scenario]["modes"][mode]
    ours = result["flowstar"]
    assert "litestar-workflows" not in result
    assert result["ratio"] is None
    assert ours["rounds"] == QUICK_ROUNDS
    assert ours["completed"] == [QUICK_INSTANCES] * QUICK_ROUNDS
    assert ours["all_completed"] is True
    assert ours["errors"] == 0
    assert ours["final_statuses"] == {"completed": QUICK_INSTANCES}
    assert ours["median_instances_per_s"] > 0
    # Each completed instance ran three steps (for the round trip: two machine, one human).
    assert ours["median_steps_per_s"] == pytest.approx(3 * ours["median_instances_per_s"], rel=0.01)
    if scenario == "human_roundtrip":
        assert ours["median_raw_roundtrips_per_s"] == pytest.approx(ours["median_instances_per_s"], rel=0.01)


def test_auto_marks_a_missing_reference_as_not_installed() -> None:
    if importlib.util.find_spec("litestar_workflows") is not None:
        pytest.skip("litestar-workflows is installed here")
    report = _run("--instances", "5", "--rounds", "1", "--scenarios", "linear3", "--modes", "sequential")
    assert report["engines"]["litestar-workflows"]["status"] == "not installed"
    assert report["scenarios"]["linear3"]["modes"]["sequential"]["flowstar"]["completed"] == [5]


def test_slices_round_up_to_whole_batches_and_cover_every_instance() -> None:
    # 50 instances in slices of 30 (sequential) and 40, two batches of 20 (concurrent): the
    # last slice of each round is a short one.
    report = _run(
        "--engines=flowstar", "--instances=50", "--rounds=1", "--slice=30", "--batch=20", "--scenarios=linear3"
    )
    assert report["config"]["slice"] == {"sequential": 30, "concurrent": 40}
    for mode in ("sequential", "concurrent"):
        assert report["scenarios"]["linear3"]["modes"][mode]["flowstar"]["completed"] == [50]
