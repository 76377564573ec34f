"""The persistence benchmark runs in quick mode (our engine only) and prints the JSON its
README describes, on SQLite and on PostgreSQL.

litestar-workflows is not installed in the test environment: the comparison runs by hand
(see ``benchmarks/README.md``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_persistence.py"
SUMMARY_KEYS = {
    "rounds",
    "instances",
    "completed",
    "status_completed",
    "all_completed",
    "errors",
    "first_error",
    "statuses",
    "median_seconds",
    "median_cpu_seconds",
    "instances_per_s",
    "steps_per_s",
    "round_trips_per_instance",
    "round_trips_per_step",
    "sqlalchemy_events_per_instance",
    "seconds_per_round",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def report(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    database = request.param
    args = [sys.executable, str(SCRIPT), "--quick", "--only-ours", "--db", database]
    if database == "postgresql":
        args += ["--pg-url", str(request.getfixturevalue("postgres_url"))]
    done = subprocess.run(args, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stderr
    return database, json.loads(done.stdout)  # stdout holds the JSON object and nothing else


def test_quick_benchmark_json(report: tuple[str, dict[str, Any]]) -> None:
    database, document = report
    assert document["benchmark"] == "persistence"
    assert document["config"] == {
        "instances": 10,
        "concurrency": 5,
        "rounds": 1,
        "quick": True,
        "databases": [database],
        "scenarios": ["linear3", "human_roundtrip"],
        "compared": False,
    }
    assert set(document["versions"]) == {"flowstar"}
    assert document["round_trips_counted"]
    assert document["targets"] == {"min_throughput_ratio": 10.0, "max_round_trips_per_machine_step": 3.0}
    assert set(document["results"]) == {database}
    for scenario in ("linear3", "human_roundtrip"):
        ours = document["results"][database][scenario]["flowstar"]
        assert set(ours) == SUMMARY_KEYS
        assert ours["all_completed"] is True
        assert ours["completed"] == ours["status_completed"] == 10
        assert ours["errors"] == 0
        assert ours["statuses"] == {"completed": 10}
        assert ours["instances_per_s"] > 0
        assert ours["steps_per_s"] == pytest.approx(ours["instances_per_s"] * 3, rel=0.01)
        assert ours["round_trips_per_instance"] > 0
        assert ours["sqlalchemy_events_per_instance"] >= 0
    linear = document["targets_met"][f"{database}/linear3"]
    results = document["results"][database]
    if database == "postgresql":
        # One round trip per commit (the start, each machine step): 4 per instance.  The
        # returned view is the state the call committed last, not read back.  A commit is
        # one statement, outside SQLAlchemy's execution layer.
        assert results["linear3"]["flowstar"]["round_trips_per_instance"] == 4.0
        assert linear["round_trips_per_machine_step"] == pytest.approx(4 / 3, abs=0.01)
        assert linear["round_trips_ok"] is True
        # Create, the step entering the task, the load before completing (a caller's read is
        # fresh), the completion, the last step: 5.
        assert results["human_roundtrip"]["flowstar"]["round_trips_per_instance"] == 5.0
        assert results["linear3"]["flowstar"]["sqlalchemy_events_per_instance"] == 0.0
    else:
        # SQLite commits as a plain SQLAlchemy transaction (no driver internals): several
        # calls into aiosqlite's thread per commit, counted all the same.
        assert results["linear3"]["flowstar"]["round_trips_per_instance"] > 4.0
        assert results["human_roundtrip"]["flowstar"]["round_trips_per_instance"] > 5.0
    assert "throughput_ok" not in linear
