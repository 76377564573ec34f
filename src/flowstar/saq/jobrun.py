"""What a SAQ job contributes to the engine's activation loop: its lease, budget and job."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from saq.job import Job

from flowstar.engine.activation import ActivationRun
from flowstar.saq.lease import Lease

__all__ = ["JobRun"]


@dataclass(slots=True, eq=False)
class JobRun(ActivationRun):
    """A run of the activation loop inside one SAQ job.

    Attributes:
        job: the SAQ job (None when called directly, as tests do).
        make_lease: the lease of an activation, by its id.
        lease: the lease of the activation executing now.
        deadline: ``time.monotonic()`` after which the job chains no further step.
    """

    job: Job | None = None
    make_lease: Callable[[str], Lease] | None = None
    lease: Lease | None = None
    deadline: float = math.inf

    async def take_lease(self, token_id: str) -> bool:
        """Hold the lease of ``token_id`` (giving up the previous one); False if another holds it."""
        assert self.make_lease is not None
        lease = self.make_lease(token_id)
        if not await lease.acquire():
            return False
        previous, self.lease = self.lease, lease
        if previous is not None:
            await previous.release()
        return True

    async def release(self) -> None:
        """Give up the lease held now, if any."""
        if self.lease is not None:
            await self.lease.release()
            self.lease = None
