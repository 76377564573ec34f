"""The inbox benchmark runs at a tiny size and prints the JSON its README describes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_inbox.py"
CALLS = {"inbox_first_page", "inbox_next_page", "instance_page", "get_tasks_assignee", "list_instances_offset"}

pytestmark = pytest.mark.integration


def test_tiny_inbox_benchmark_json(postgres_url: str) -> None:
    args = [sys.executable, str(SCRIPT), "--sizes", "600,1500", "--queries", "20", "--pg-url", postgres_url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # stdout holds the JSON object and nothing else

    assert document["benchmark"] == "inbox"
    assert document["config"]["sizes"] == [600, 1500]
    assert set(document["sizes"]) == {"600", "1500"}
    assert set(document["p99_ratio_largest_to_smallest"]) == CALLS
    assert isinstance(document["meets_targets"], bool)
    for size, result in document["sizes"].items():
        assert result["open_tasks"] == int(size)
        counts = result["counts"]
        # The fill's rule: row i is in tenant i % 5; with r = i / 5 its user is r % 10 (none
        # when r % 3 == 2) and its group r % 4.  The user is user 0 of groups 0 and 1.
        rows = [i // 5 for i in range(int(size)) if i % 5 == 0]
        own = [r for r in rows if r % 10 == 0 and r % 3 != 2]
        inbox = [r for r in rows if r in own or r % 4 in {0, 1}]
        assert counts["inbox_first_page"] == min(50, len(inbox))
        assert counts["inbox_next_page"] == min(50, len(inbox) - 50)
        assert counts["instance_page"] == 50
        assert counts["inbox_items_mine"] is True
        assert counts["inbox_pages_disjoint"] is True
        assert counts["instance_page_in_tenant"] is True
        assert counts["get_tasks_assignee_rows"] == len(own)
        for call in CALLS:
            assert 0 < result[call]["p50_ms"] <= result[call]["p99_ms"]
        inbox_plan = result["plans"]["inbox_first_page"]
        assert {"ix_workflow_human_tasks_inbox_assignee", "ix_workflow_human_tasks_inbox_group"} <= set(
            inbox_plan["indexes"]
        )
