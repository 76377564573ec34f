"""The default registry (FLOWSTAR_REGISTRY, else the process-wide one), get_step, documented paths."""

from __future__ import annotations

import pytest

import flowstar.core.events
import flowstar.events
from flowstar import StepType, WorkflowNotFoundError, WorkflowRegistry
from flowstar.exceptions import ConfigurationError, StepNotFoundError
from flowstar.model.registry import default_registry, load_registry
from tests.unit.helpers import Set, linear

NAMED = WorkflowRegistry()
NAMED.register_definition(linear("named", Set("only")))
NOT_A_REGISTRY = 42
made: list[WorkflowRegistry] = []


def make_registry() -> WorkflowRegistry:
    """A factory FLOWSTAR_REGISTRY may name: the default registry calls it once per path."""
    registry = WorkflowRegistry()
    made.append(registry)
    return registry


HERE = __name__


def test_without_the_variable_the_process_wide_registry_is_used() -> None:
    registry = default_registry({})
    assert isinstance(registry, WorkflowRegistry)
    assert default_registry({"FLOWSTAR_REGISTRY": ""}) is registry
    assert default_registry({"FLOWSTAR_REGISTRY": "  "}) is registry
    assert default_registry({}) is registry  # one per process


def test_the_variable_wins_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_registry({"FLOWSTAR_REGISTRY": f"{HERE}:NAMED"}) is NAMED
    assert default_registry({"FLOWSTAR_REGISTRY": f"{HERE}.NAMED"}) is NAMED
    monkeypatch.setenv("FLOWSTAR_REGISTRY", f"{HERE}:NAMED")
    assert default_registry() is NAMED
    monkeypatch.delenv("FLOWSTAR_REGISTRY")
    assert default_registry() is default_registry({})


def test_a_factory_is_called_once_per_path() -> None:
    first = default_registry({"FLOWSTAR_REGISTRY": f"{HERE}:make_registry"})
    again = default_registry({"FLOWSTAR_REGISTRY": f"{HERE}:make_registry"})
    assert first is again
    assert made == [first]
    assert load_registry(f"{HERE}:make_registry") is not first  # load_registry itself calls it each time


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_separator", "must look like 'package.module:registry'"),
        ("no_such_module_xyz:registry", "names nothing: No module named 'no_such_module_xyz'"),
        (f"{HERE}:missing", "names nothing"),
        (f"{HERE}:NOT_A_REGISTRY", "is int, not a WorkflowRegistry"),
    ],
)
def test_a_variable_naming_no_registry_is_a_configuration_error(path: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        default_registry({"FLOWSTAR_REGISTRY": path})
    assert isinstance(info.value, ValueError)


def test_get_step_returns_the_step_of_a_registered_workflow() -> None:
    registry = WorkflowRegistry()
    first, second = Set("first"), Set("second")
    registry.register_definition(linear("flow", first, second))
    registry.register_definition(linear("flow", Set("first"), Set("changed"), version="2.0.0"))
    assert registry.get_step("flow", "first", "1.0.0") is first
    assert registry.get_step("flow", "second", version="1.0.0") is second
    assert registry.get_step("flow", "changed").step_type is StepType.MACHINE  # the latest version
    with pytest.raises(StepNotFoundError) as info:
        registry.get_step("flow", "second")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "workflow 'flow' 2.0.0 has no step 'second' (steps: first, changed)"
    with pytest.raises(WorkflowNotFoundError, match="workflow 'ghost' is not registered"):
        registry.get_step("ghost", "first")


def test_core_events_imports_like_events() -> None:
    from flowstar.core.events import WorkflowCompletedEvent, WorkflowEvent, WorkflowStartedEvent

    assert WorkflowEvent is flowstar.events.WorkflowEvent
    assert WorkflowStartedEvent is flowstar.events.WorkflowStarted
    assert WorkflowCompletedEvent is flowstar.events.WorkflowCompleted
    for name in flowstar.events.__all__:
        assert getattr(flowstar.core.events, name) is getattr(flowstar.events, name)
