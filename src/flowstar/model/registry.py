"""Registered workflow definitions, by name and semantic version."""

from __future__ import annotations

from typing import Any, Protocol

from flowstar.model.definition import WorkflowDefinition
from flowstar.model.errors import ValidationError, WorkflowNotFoundError
from flowstar.model.semver import semver_key

__all__ = ["WorkflowClass", "WorkflowRegistry"]


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
        """
        problems = definition.validate()
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
