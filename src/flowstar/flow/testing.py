"""``flowstar.testing`` under the code-first package's name: the same test kit."""

from flowstar.testing import ManualClock, advance, next_due, settle

__all__ = ["ManualClock", "advance", "next_due", "settle"]
