"""Rendering definitions as MermaidJS flowcharts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowstar.model.enums import StepType

if TYPE_CHECKING:
    from flowstar.model.definition import WorkflowDefinition

__all__ = ["render_mermaid"]

_SHAPES = {
    StepType.MACHINE: ('["', '"]'),
    StepType.HUMAN: ('[/"', '"/]'),
    StepType.GATEWAY: ('{"', '"}'),
    StepType.TIMER: ('(("', '"))'),
    StepType.WEBHOOK: ('>"', '"]'),
    StepType.SIGNAL: ('>"', '"]'),
    StepType.EVENT: ('>"', '"]'),
}


def _text(value: str) -> str:
    # Mermaid labels are quoted; quotes and pipes would end them early.
    return value.replace('"', "#quot;").replace("|", "#124;")


def render_mermaid(definition: WorkflowDefinition, current_step: str | None = None) -> str:
    """Return a ``graph TD`` chart; ``current_step`` gets the ``current`` class."""
    ids = {name: f"s{i}" for i, name in enumerate(definition.steps)}
    lines = ["graph TD"]
    for name, step in definition.steps.items():
        opening, closing = _SHAPES.get(getattr(step, "step_type", StepType.MACHINE), _SHAPES[StepType.MACHINE])
        lines.append(f"    {ids[name]}{opening}{_text(name)}{closing}")
    for edge in definition.edges:
        if edge.source not in ids or edge.target not in ids:
            continue
        label = f'|"{_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {ids[edge.source]} -->{label} {ids[edge.target]}")
    terminals = [ids[t] for t in sorted(definition.terminal_steps) if t in ids]
    if definition.initial_step in ids:
        lines.append("    classDef initial stroke-width:3px")
        lines.append(f"    class {ids[definition.initial_step]} initial")
    if terminals:
        lines.append("    classDef terminal stroke-dasharray: 4 2")
        lines.append(f"    class {','.join(terminals)} terminal")
    if current_step is not None:
        if current_step not in ids:
            raise ValueError(f"current_step {current_step!r} is not a step of {definition.name!r}")
        lines.append("    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px")
        lines.append(f"    class {ids[current_step]} current")
    return "\n".join(lines)
