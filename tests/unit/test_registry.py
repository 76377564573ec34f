"""The workflow registry: versions, lookups, activation, workflow classes."""

from __future__ import annotations

from typing import Any

import pytest

from flowstar import (
    InvalidTransitionError,
    ValidationError,
    WorkflowDefinition,
    WorkflowNotFoundError,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.model.semver import is_semver, semver_key
from tests.unit.helpers import Set, linear


def _definition(version: str, name: str = "flow") -> WorkflowDefinition:
    return linear(name, Set("start", version=version), Set("end"), version=version)


def _registry(*versions: str, name: str = "flow") -> WorkflowRegistry:
    registry = WorkflowRegistry()
    for version in versions:
        registry.register_definition(_definition(version, name))
    return registry


@pytest.mark.parametrize(
    ("versions", "latest"),
    [
        (["1.9.0", "1.10.0", "1.2.0"], "1.10.0"),
        (["1.10.0", "1.9.0"], "1.10.0"),
        (["2.0.0-rc.1", "2.0.0", "1.99.99"], "2.0.0"),
        (["2.0.0", "2.0.0-rc.1"], "2.0.0"),
        (["0.9.0", "0.10.0-alpha"], "0.10.0-alpha"),
        (["1.0.0", "1.0.10", "1.0.9"], "1.0.10"),
        (["10.0.0", "9.0.0"], "10.0.0"),
    ],
)
def test_latest_version_follows_semver_order(versions: list[str], latest: str) -> None:
    registry = _registry(*versions)
    assert registry.get_definition("flow").version == latest


def test_semver_precedence_matches_the_spec() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    scrambled = [ordered[i] for i in (7, 3, 10, 0, 5, 9, 1, 8, 2, 6, 4)]
    assert sorted(scrambled, key=semver_key) == ordered
    assert semver_key("1.0.0+build.5") == semver_key("1.0.0")


@pytest.mark.parametrize("version", ["1.0", "1", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "", "a.b.c"])
def test_invalid_versions(version: str) -> None:
    assert not is_semver(version)
    with pytest.raises(ValueError, match="not a semantic version"):
        semver_key(version)


def test_get_definition_by_version_and_unknown_lookups() -> None:
    registry = _registry("1.0.0", "1.1.0")
    assert registry.get_definition("flow", "1.0.0").version == "1.0.0"
    assert registry.get_definition("flow", version="1.1.0").version == "1.1.0"
    with pytest.raises(WorkflowNotFoundError, match="workflow 'nope' is not registered"):
        registry.get_definition("nope")
    with pytest.raises(
        WorkflowNotFoundError, match=r"workflow 'flow' has no version '3.0.0' \(registered: 1.0.0, 1.1.0\)"
    ):
        registry.get_definition("flow", "3.0.0")
    assert issubclass(WorkflowNotFoundError, LookupError)


def test_list_and_has_definition() -> None:
    registry = _registry("1.10.0", "1.9.0")
    registry.register_definition(_definition("1.0.0", name="alpha"))
    listed = [(d.name, d.version) for d in registry.list_definitions()]
    assert listed == [("alpha", "1.0.0"), ("flow", "1.9.0"), ("flow", "1.10.0")]
    assert registry.has_definition("flow")
    assert registry.has_definition("flow", "1.9.0")
    assert not registry.has_definition("flow", "2.0.0")
    assert not registry.has_definition("missing")


def test_deactivate_hides_a_version_from_latest_and_listing() -> None:
    registry = _registry("1.0.0", "2.0.0")
    registry.deactivate("flow", "2.0.0")
    assert not registry.is_active("flow", "2.0.0")
    assert registry.get_definition("flow").version == "1.0.0"
    assert registry.get_definition("flow", "2.0.0").version == "2.0.0"  # still reachable by version
    assert [d.version for d in registry.list_definitions()] == ["1.0.0"]
    assert [d.version for d in registry.list_definitions(active_only=False)] == ["1.0.0", "2.0.0"]
    registry.deactivate("flow", "1.0.0")
    with pytest.raises(WorkflowNotFoundError, match="has no active version"):
        registry.get_definition("flow")
    registry.activate("flow", "2.0.0")
    assert registry.get_definition("flow").version == "2.0.0"
    with pytest.raises(WorkflowNotFoundError):
        registry.deactivate("flow", "9.9.9")


def test_registering_twice() -> None:
    registry = WorkflowRegistry()
    definition = _definition("1.0.0")
    registry.register_definition(definition)
    registry.register_definition(definition)  # the same object again is fine
    with pytest.raises(ValidationError, match="version 1.0.0 is already registered"):
        registry.register_definition(_definition("1.0.0"))
    assert registry.get_definition("flow") is definition


class ApprovalWorkflow:
    @classmethod
    def get_definition(cls) -> WorkflowDefinition:
        return linear("class_flow", Set("start", via="class"), Set("end", done=True), version="1.2.3")


def test_register_workflow_class() -> None:
    registry = WorkflowRegistry()
    definition = registry.register_workflow_class(ApprovalWorkflow)
    assert (definition.name, definition.version) == ("class_flow", "1.2.3")
    assert registry.register_workflow_class(ApprovalWorkflow) is definition
    assert registry.resolve(ApprovalWorkflow) is definition
    assert registry.has_definition("class_flow", "1.2.3")

    class NotAWorkflow:
        pass

    with pytest.raises(ValidationError, match="has no get_definition"):
        registry.register_workflow_class(NotAWorkflow)

    class Wrong:
        @classmethod
        def get_definition(cls) -> Any:
            return {"name": "x"}

    with pytest.raises(ValidationError, match="did not return a WorkflowDefinition"):
        registry.register_workflow_class(Wrong)


async def test_start_workflow_by_class(make_engine: Any) -> None:
    engine = make_engine()
    engine.registry.register_workflow_class(ApprovalWorkflow)
    instance = await engine.start_workflow(ApprovalWorkflow, initial_data={"key": "value"})
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.workflow_name == "class_flow"
    assert instance.definition_name == "class_flow"
    assert instance.workflow_version == "1.2.3"
    assert instance.context.data == {"key": "value", "via": "class", "done": True}


async def test_start_workflow_by_unregistered_class_registers_it(make_engine: Any) -> None:
    engine = make_engine()
    instance = await engine.start_workflow(ApprovalWorkflow)
    assert instance.status is WorkflowStatus.COMPLETED
    assert engine.registry.has_definition("class_flow")


async def test_start_workflow_picks_the_version(make_engine: Any) -> None:
    engine = make_engine(_definition("1.9.0"), _definition("1.10.0"))
    latest = await engine.start_workflow("flow")
    assert latest.workflow_version == "1.10.0"
    assert latest.context.get("version") == "1.10.0"
    older = await engine.start_workflow("flow", version="1.9.0")
    assert older.workflow_version == "1.9.0"
    assert older.context.get("version") == "1.9.0"
    with pytest.raises(WorkflowNotFoundError):
        await engine.start_workflow("flow", version="7.0.0")
    with pytest.raises(WorkflowNotFoundError):
        await engine.start_workflow("unknown")


async def test_deactivated_versions_are_not_started_by_default(make_engine: Any) -> None:
    engine = make_engine(_definition("1.0.0"), _definition("2.0.0"))
    engine.registry.deactivate("flow", "2.0.0")
    assert (await engine.start_workflow("flow")).workflow_version == "1.0.0"
    explicit = await engine.start_workflow("flow", version="2.0.0")
    assert explicit.workflow_version == "2.0.0"
    engine.registry.deactivate("flow", "1.0.0")
    with pytest.raises(WorkflowNotFoundError):
        await engine.start_workflow("flow")
    with pytest.raises(InvalidTransitionError, match="deactivated"):
        await engine.start_workflow(engine.registry.get_definition("flow", "1.0.0"))
