"""Registered workflow definitions, by name and semantic version, and the default registry.

An engine built without a registry uses ``default_registry()``: the registry that the
``FLOWSTAR_REGISTRY`` environment variable names (``module:attribute``), when it is set, else
one process-wide ``WorkflowRegistry``.  The variable wins so that a web process and its
workers, configured alike, find the same definitions.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from flowstar.model.definition import WorkflowDefinition
from flowstar.model.errors import ConfigurationError, StepNotFoundError, ValidationError, WorkflowNotFoundError
from flowstar.model.semver import semver_key

if TYPE_CHECKING:
    from flowstar.model.steps import Step

__all__ = ["REGISTRY_ENV", "WorkflowClass", "WorkflowRegistry", "default_registry", "load_registry"]

REGISTRY_ENV = "FLOWSTAR_REGISTRY"


class WorkflowClass(Protocol):
    """A class that produces its definition (``MyWorkflow.get_definition()``)."""

    @classmethod
    def get_definition(cls) -> WorkflowDefinition:
        """Build the workflow's definition."""


class WorkflowRegistry:
    """Registry for managing workflow definitions."""

    def __init__(self) -> None:
        self._definitions: dict[str, dict[str, WorkflowDefinition]] = {}
        self._inactive: set[tuple[str, str]] = set()
        self._classes: dict[type[Any], WorkflowDefinition] = {}
        # The latest active version per name, found by a semver sort: computed on first use,
        # dropped whenever registrations or activations change.
        self._latest: dict[str, WorkflowDefinition] = {}

    def register_definition(self, definition: WorkflowDefinition) -> None:
        """Register ``definition``.

        Raises:
            ValidationError: the definition has structural problems (all are listed), or a
                different definition is already registered under the same name and version.
            TypeError: ``definition`` is not a ``WorkflowDefinition``.
        """
        if not isinstance(definition, WorkflowDefinition):
            raise TypeError(f"register_definition takes a WorkflowDefinition, got {type(definition).__name__}")
        problems = definition.validate()  # structure again (it may have changed), and identity
        if problems:
            raise ValidationError(
                f"workflow {definition.name!r} {definition.version} is invalid: " + "; ".join(problems),
                problems,
            )
        versions = self._definitions.setdefault(definition.name, {})
        existing = versions.get(definition.version)
        if existing is not None and existing is not definition:
            raise ValidationError(f"workflow {definition.name!r} version {definition.version} is already registered")
        versions[definition.version] = definition
        self._inactive.discard((definition.name, definition.version))
        self._latest.clear()

    def register_workflow_class(self, workflow: type[Any]) -> WorkflowDefinition:
        """Register a class exposing ``get_definition()``; it can then be started by class."""
        if workflow in self._classes:
            return self._classes[workflow]
        factory = getattr(workflow, "get_definition", None)
        if not callable(factory):
            raise ValidationError(f"{workflow!r} has no get_definition() classmethod")
        definition = factory()
        if not isinstance(definition, WorkflowDefinition):
            raise ValidationError(f"{workflow.__name__}.get_definition() did not return a WorkflowDefinition")
        known = self._definitions.get(definition.name, {}).get(definition.version)
        if known is None:
            self.register_definition(definition)
            known = definition
        self._classes[workflow] = known
        return known

    def resolve(self, workflow: str | type[Any] | WorkflowDefinition, version: str | None = None) -> WorkflowDefinition:
        """The definition for a name, a registered workflow class, or a definition."""
        if isinstance(workflow, WorkflowDefinition):
            return self.get_definition(workflow.name, workflow.version)
        if isinstance(workflow, type):
            definition = self._classes.get(workflow) or self.register_workflow_class(workflow)
            return definition if version is None else self.get_definition(definition.name, version)
        return self.get_definition(workflow, version)

    def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        """The given version, or the latest active one by semantic-version order.

        Raises:
            WorkflowNotFoundError: no such workflow or version.
        """
        versions = self._definitions.get(name)
        if not versions:
            raise WorkflowNotFoundError(f"workflow {name!r} is not registered")
        if version is not None:
            try:
                return versions[version]
            except KeyError:
                known = ", ".join(sorted(versions, key=semver_key))
                raise WorkflowNotFoundError(
                    f"workflow {name!r} has no version {version!r} (registered: {known})"
                ) from None
        latest = self._latest.get(name)
        if latest is not None:
            return latest
        active = [v for v in versions if (name, v) not in self._inactive]
        if not active:
            raise WorkflowNotFoundError(f"workflow {name!r} has no active version")
        latest = self._latest[name] = versions[max(active, key=semver_key)]
        return latest

    def get_step(self, workflow_name: str, step_name: str, version: str | None = None) -> Step:
        """The step ``step_name`` of a workflow (the latest active version unless ``version``).

        Raises:
            WorkflowNotFoundError: no such workflow or version.
            StepNotFoundError: (a ``KeyError``) the definition has no such step.
        """
        definition = self.get_definition(workflow_name, version)
        step = definition.steps.get(step_name)
        if step is None:
            known = ", ".join(definition.steps)
            raise StepNotFoundError(
                f"workflow {workflow_name!r} {definition.version} has no step {step_name!r} (steps: {known})"
            )
        return step

    def list_definitions(self, active_only: bool = True) -> list[WorkflowDefinition]:
        """Every registered definition, sorted by name then version."""
        return [
            definition
            for name in sorted(self._definitions)
            for version, definition in sorted(self._definitions[name].items(), key=lambda kv: semver_key(kv[0]))
            if not (active_only and (name, version) in self._inactive)
        ]

    def has_definition(self, name: str, version: str | None = None) -> bool:
        """Whether ``name`` (and ``version``, if given) is registered."""
        versions = self._definitions.get(name, {})
        return bool(versions) if version is None else version in versions

    def deactivate(self, name: str, version: str) -> None:
        """Stop offering ``version`` as the latest; running instances keep using it."""
        self.get_definition(name, version)
        self._inactive.add((name, version))
        self._latest.clear()

    def activate(self, name: str, version: str) -> None:
        """Undo ``deactivate``."""
        self.get_definition(name, version)
        self._inactive.discard((name, version))
        self._latest.clear()

    def is_active(self, name: str, version: str) -> bool:
        """Whether ``version`` of ``name`` is offered for new instances."""
        return (name, version) not in self._inactive


def load_registry(path: str) -> WorkflowRegistry:
    """Import ``module:attribute`` (or ``module.attribute``) and return the registry it names.

    The attribute is a ``WorkflowRegistry`` or a callable returning one (called each time).

    Raises:
        ConfigurationError: the path is malformed, the module or attribute does not exist, or
            it is not a registry.
    """
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attribute:
        raise ConfigurationError(f"registry path {path!r} must look like 'package.module:registry'")
    try:
        target: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"registry path {path!r} names nothing: {exc}") from exc
    if callable(target) and not isinstance(target, WorkflowRegistry):
        target = target()
    if not isinstance(target, WorkflowRegistry):
        raise ConfigurationError(f"{path} is {type(target).__name__}, not a WorkflowRegistry")
    return target


_PROCESS_REGISTRY = WorkflowRegistry()
# Registries loaded from FLOWSTAR_REGISTRY, by path: a factory is called once, so that every
# engine of the process shares what it returned.
_loaded: dict[str, WorkflowRegistry] = {}


def default_registry(environ: Mapping[str, str] | None = None) -> WorkflowRegistry:
    """The registry of an engine built without one.

    Args:
        environ: where to read ``FLOWSTAR_REGISTRY`` (``os.environ`` by default).

    Returns:
        The registry ``FLOWSTAR_REGISTRY`` names, when it is set and not empty (loaded once
        per path); else the process-wide registry, the same object on every call.
        Definitions registered on one are not seen by the other.

    Raises:
        ConfigurationError: ``FLOWSTAR_REGISTRY`` names no registry.
    """
    path = (os.environ if environ is None else environ).get(REGISTRY_ENV, "").strip()
    if not path:
        return _PROCESS_REGISTRY
    registry = _loaded.get(path)
    if registry is None:
        registry = _loaded[path] = load_registry(path)
    return registry
