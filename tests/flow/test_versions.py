"""Safe upgrades: an instance finishes on the version it started on, whatever newer versions say.

On every store: a version 2 that renames and drops steps leaves version 1's parked instances
alone, and ``Engine.definition_versions`` tells which versions still have instances.
"""

from __future__ import annotations

from flowstar import WorkflowRegistry, WorkflowStatus
from flowstar.engine.views import VersionUsage
from flowstar.flow import FlowEngine, complete, get_context, goto, step, wait, workflow


def version_1(registry: WorkflowRegistry) -> None:
    @workflow("onboarding", version="1.0.0", registry=registry)
    class OnboardingV1:
        @step(start=True)
        def welcome(self):
            get_context()["trail"] = ["welcome"]
            return wait.for_signal("documents_in", next=self.check_documents)

        @step()
        def check_documents(self):
            get_context()["trail"].append("check_documents")
            return complete(finished_on="1.0.0")


def version_2(registry: WorkflowRegistry) -> None:
    @workflow("onboarding", version="2.0.0", registry=registry)
    class OnboardingV2:
        @step(start=True)
        def greet(self):
            get_context()["trail"] = ["greet"]
            return goto(self.done)

        @step()
        def done(self):
            return complete(finished_on="2.0.0")


async def test_a_parked_instance_finishes_on_its_own_version(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    version_1(registry)
    old = await flow_engine.start("onboarding")
    assert (old.version, old.status, old.current_step) == ("1.0.0", WorkflowStatus.WAITING, "welcome")

    version_2(registry)  # renames the first step, drops the wait and check_documents
    new = await flow_engine.start("onboarding")
    assert (new.version, new.status, new.data["finished_on"]) == ("2.0.0", WorkflowStatus.COMPLETED, "2.0.0")
    assert new.data["trail"] == ["greet"]

    # The facade's call (as docs/code-first.md shows it) is the engine's.
    assert await flow_engine.definition_versions() == [
        VersionUsage(name="onboarding", version="1.0.0", registered=True, active=True, running=1),
        VersionUsage(name="onboarding", version="2.0.0", registered=True, active=True, running=0),
    ]

    await flow_engine.signal("documents_in", instance_id=old.id)
    old = await old.refresh()
    assert (old.version, old.status, old.data["finished_on"]) == ("1.0.0", WorkflowStatus.COMPLETED, "1.0.0")
    assert old.data["trail"] == ["welcome", "check_documents"]
    counts = {(v.version, v.running) for v in await flow_engine.engine.definition_versions()}
    assert counts == {("1.0.0", 0), ("2.0.0", 0)}


async def test_a_version_dropped_from_the_code_shows_as_stranded(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    """A process whose code lost version 1 still sees its running instances, unregistered."""
    version_1(registry)
    await flow_engine.start("onboarding")
    newer = WorkflowRegistry()
    version_2(newer)
    flow_engine.engine.registry = newer
    assert await flow_engine.engine.definition_versions() == [
        VersionUsage(name="onboarding", version="1.0.0", registered=False, active=False, running=1),
        VersionUsage(name="onboarding", version="2.0.0", registered=True, active=True, running=0),
    ]


async def test_a_deactivated_version_takes_no_new_instances_but_keeps_its_own(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    version_1(registry)
    version_2(registry)
    registry.deactivate("onboarding", "2.0.0")
    parked = await flow_engine.start("onboarding")
    assert parked.version == "1.0.0"
    usage = {v.version: v for v in await flow_engine.engine.definition_versions()}
    assert (usage["2.0.0"].active, usage["1.0.0"].running) == (False, 1)
