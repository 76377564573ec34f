"""``flowstar.events`` under the path the reference documents import it from."""

from flowstar.events import *  # noqa: F403 - the same names as flowstar.events, by design
