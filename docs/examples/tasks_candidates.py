"""docs/tasks.md: who a task is for: an assignee group, candidates, a priority and dates."""

from __future__ import annotations

import asyncio

# --8<-- [start:step]
from datetime import timedelta

from flowstar import BaseHumanStep


class ReviewContract(BaseHumanStep):
    name = "review_contract"
    title = "Review the contract"
    assignee_group = "legal"  # counts as one more candidate group
    candidate_groups = ["compliance"]  # members of these groups may claim it
    candidate_users = ["dana"]  # and these users
    candidates_key = "reviewers"  # more from the context: {"users": [...], "groups": [...]}
    priority = 80  # 0..100, higher first (default 50)
    due_in = timedelta(days=3)  # sets due_at
    follow_up = timedelta(days=1)  # sets follow_up_at (a date to look again, no timer)


# --8<-- [end:step]


async def main() -> None:
    step = ReviewContract()
    assert (step.priority, step.candidate_groups, step.candidates_key) == (80, ["compliance"], "reviewers")
    assert (step.due_in, step.follow_up) == (timedelta(days=3), timedelta(days=1))


if __name__ == "__main__":
    asyncio.run(main())
