"""The local-engine benchmark runs in quick mode and prints the JSON its README describes.

Only our engine runs here: the test environment does not install litestar-workflows.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_local", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def _engine(by_round: list[float]) -> dict:
    median = sorted(by_round)[len(by_round) // 2]
    return {
        "instances_per_s_by_round": by_round,
        "median_instances_per_s": median,
        "median_instances_per_cpu_s": median,
    }


def test_the_ratio_is_the_median_of_the_rounds_paired_ratios() -> None:
    bench = _module()
    # Round 2 ran on a slow machine for both: pairing keeps it at 1.2, the medians do not.
    ours, theirs = _engine([120.0, 60.0, 130.0]), _engine([100.0, 50.0, 140.0])
    result = bench.compare("linear3", {"flowstar": ours, "litestar-workflows": theirs})
    assert result["ratio_by_round"] == [1.2, 1.2, 0.929]
    assert result["ratio"] == 1.2
    assert result["ratio_of_medians"] == 1.2
    assert result["meets_min"] is True
    assert result["meets_goal"] is False
    # A reference that completed nothing: no ratio, and any positive rate meets the target.
    none = bench.compare("linear3", {"flowstar": ours, "litestar-workflows": _engine([0.0, 0.0, 0.0])})
    assert none["ratio"] is None
    assert none["meets_min"] is True
