"""The code-first and signal benchmark runs in quick mode against the real servers and prints
the JSON its README describes, with every instance, signal and broadcast accounted for.

It creates and drops PostgreSQL databases, starts one SAQ worker subprocess and uses Redis db
11 (unique queue names, keys deleted afterwards).  Timings are not checked, only counts.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_flow.py"
ENGINES = ("local", "sqlite", "postgresql")
SIDES = ("graph", "code_async", "code_sync", "code_typed")
QUICK_INSTANCES = 20
QUICK_SIGNALS, QUICK_WARMUP = 12, 2
QUICK_SIZES = (20, 40)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def report(postgres_url: str, redis_server_url: str) -> dict[str, Any]:
    servers = ["--pg-url", postgres_url, "--redis-url", f"{redis_server_url}/11"]
    command = [sys.executable, str(SCRIPT), "--quick", *servers]
    done = subprocess.run(command, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout)  # stdout holds the JSON object and nothing else


@pytest.mark.timeout(120)
def test_reports_config_machine_and_targets(report: dict[str, Any]) -> None:
    assert report["benchmark"] == "flow"
    config = report["config"]
    assert config["quick"] is True
    assert config["parts"] == ["flow", "signal", "broadcast"]
    assert config["engines"] == list(ENGINES)
    assert config["sides"] == list(SIDES)
    assert (config["instances"], config["rounds"], config["slice"]) == (QUICK_INSTANCES, 1, 10)
    assert (config["signals"], config["signal_warmup"]) == (QUICK_SIGNALS, QUICK_WARMUP)
    assert config["broadcast_sizes"] == list(QUICK_SIZES)
    assert report["machine"]["cpu_count"] >= 1
    assert len(report["source"]["commit"]) == 40  # the checkout measured
    assert isinstance(report["source"]["src_modified"], bool)
    assert report["targets"] == {
        "min_code_first_ratio": 0.9,
        "signal_latency_p50_ms": 5.0,
        "signal_latency_p99_ms": 25.0,
    }
    expected = {f"flow/{engine}/{side}" for engine in ENGINES for side in SIDES[1:]}
    expected |= {"signal_latency_p50", "signal_latency_p99"}
    expected |= {"broadcast/local/delivered_all", "broadcast/postgresql/delivered_all"}
    assert set(report["targets_met"]) == expected
    assert report["all_completed"] is True


@pytest.mark.parametrize("engine", ENGINES)
def test_every_flow_instance_completed(report: dict[str, Any], engine: str) -> None:
    result = report["flow"][engine]
    for side in SIDES:
        summary = result[side]
        assert summary["completed"] == [QUICK_INSTANCES], side
        assert summary["all_completed"] is True
        assert summary["errors"] == 0
        assert summary["first_error"] is None
        assert summary["final_statuses"] == {"completed": QUICK_INSTANCES}
        assert summary["median_instances_per_s"] > 0
        assert summary["median_steps_per_s"] == pytest.approx(3 * summary["median_instances_per_s"], rel=0.01)
    assert set(result["ratios"]) == set(SIDES[1:])
    for side, compared in result["ratios"].items():
        assert compared["ratio"] > 0
        assert compared["ratio_by_round"] == [compared["ratio"]]  # one round: its own ratio
        assert compared["meets_target"] is (compared["ratio"] >= 0.9)
        assert report["targets_met"][f"flow/{engine}/{side}"] is compared["meets_target"]


def test_every_signal_reached_its_instance_and_committed(report: dict[str, Any]) -> None:
    latency = report["signal"]
    assert latency["instances"] == QUICK_SIGNALS + QUICK_WARMUP
    assert latency["signals"] == QUICK_SIGNALS
    assert latency["warmup_signals"] == QUICK_WARMUP
    # Each signal woke its one instance, which ran its last step with the signal's payload,
    # and the trigger's notification of that commit arrived.
    assert latency["woken"] == latency["completed"] == latency["payload_delivered"] == QUICK_SIGNALS
    assert latency["commit_seen"] == latency["n"] == QUICK_SIGNALS
    assert latency["pg_round_trips_per_signal_call"] > 0
    assert 0 <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    for name, part in latency["parts"].items():
        assert part["n"] == QUICK_SIGNALS, name
    floor = latency["floor"]
    assert set(floor) == {"redis_ping", "postgres_select_1", "postgres_commit"}
    assert floor["postgres_commit"]["n"] == 20


@pytest.mark.parametrize("engine", ["local", "postgresql"])
def test_a_broadcast_wakes_every_waiting_instance(report: dict[str, Any], engine: str) -> None:
    result = report["broadcast"][engine]
    assert result["delivered_all"] is True
    assert result["size_ratio"] == 2.0
    assert result["per_instance_growth"] > 0
    assert result["cpu_per_instance_growth"] > 0
    assert set(result["sizes"]) == {str(size) for size in QUICK_SIZES}
    for size in QUICK_SIZES:
        entry = result["sizes"][str(size)]
        assert entry["woken"] == entry["completed"] == [size]
        (one,) = entry["per_round"]
        assert (one["start_errors"], one["waiting_before"], one["waiting_after"]) == (0, size, 0)
        # The local engine sends nothing to PostgreSQL; the persistent one at least its commits.
        assert (entry["pg_round_trips_per_instance"] > 0) is (engine == "postgresql")


def _module(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # sys.path is restored afterwards
    return importlib.import_module("bench_flow")


def test_growth_is_the_per_instance_median_of_the_largest_size_over_the_smallest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = _module(monkeypatch)

    def run(size: int, seconds: float) -> dict[str, Any]:
        ms = seconds * 1000 / size
        return {
            "size": size,
            "seconds": seconds,
            "cpu_seconds": seconds,
            "per_instance_ms": ms,
            "woken": size,
            "completed": size,
            "waiting_before": size,
            "pg_round_trips_per_instance": 3.0,
        }

    runs = [run(100, 1.0), run(100, 3.0), run(100, 2.0), run(400, 8.0), run(400, 12.0), run(400, 4.0)]
    summary = bench.summarize_broadcast([100, 400], runs)
    assert summary["sizes"]["100"]["median_per_instance_ms"] == 20.0
    assert summary["sizes"]["400"]["median_per_instance_ms"] == 20.0
    assert (summary["per_instance_growth"], summary["size_ratio"]) == (1.0, 4.0)
    assert summary["cpu_per_instance_growth"] == 1.0
    assert summary["delivered_all"] is True
    short = [*runs[:5], {**runs[5], "woken": 399, "completed": 399}]
    assert bench.summarize_broadcast([100, 400], short)["delivered_all"] is False


def test_warm_up_signals_are_left_out_and_missing_commits_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _module(monkeypatch)

    def sample(k: int, seen: float | None) -> Any:
        records = {"status": "completed", "data": {"k": k}, "started": 10.002, "completed": 10.003}
        return bench.Sample(f"i{k}", k, 10.0, 10.001, seen, 1, 8, records if seen is not None else {})

    samples = [sample(0, 99.0), sample(1, 10.004), sample(2, 10.006), sample(3, None)]
    report = bench.latency_report(samples, warmup=1)
    assert (report["signals"], report["n"], report["commit_seen"], report["completed"]) == (3, 2, 2, 2)
    assert report["max_ms"] == pytest.approx(6.0)  # the warm-up's 89 s are not in it
    assert report["parts"]["signal_call"]["p50_ms"] == pytest.approx(1.0)
    assert bench.rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
