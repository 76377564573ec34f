"""The HTTP benchmark runs briefly and prints the JSON its README describes, every instance completed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_http.py"

pytestmark = pytest.mark.integration


def test_short_http_benchmark_json(postgres_url: str) -> None:
    args = [sys.executable, str(SCRIPT), "--requests", "10", "--rounds", "2", "--concurrency", "2"]
    done = subprocess.run([*args, "--pg-url", postgres_url], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # stdout holds the JSON object and nothing else

    assert document["benchmark"] == "http"
    assert document["config"]["requests_per_round"] == 10
    # Warm-up (2 x concurrency) plus 2 rounds of 10, on each side.
    assert document["checks"] == {
        "instances": 24,
        "instances_completed_as_expected": 24,
        "bare_rows": 24,
        "expected_instances": 24,
        "expected_bare_rows": 24,
        "all_completed": True,
    }
    rates = document["engine_round_trips_per_s"], document["bare_requests_per_s"]
    assert all(rate > 0 for rate in rates)
    assert document["config"]["app"] == "plugin"
    assert document["config"]["requests_per_round_trip"] == 3
    assert document["engine_requests_per_s"] == pytest.approx(3 * rates[0], abs=0.2)
    assert document["ratio_requests"] == pytest.approx(document["engine_requests_per_s"] / rates[1], abs=0.01)
