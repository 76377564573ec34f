"""MermaidJS rendering of definitions."""

from __future__ import annotations

import pytest

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ExclusiveGateway,
    SequentialGroup,
    TimerStep,
    WebhookStep,
    WorkflowContext,
    WorkflowDefinition,
)


def _every_type() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="shapes",
        steps={
            "submit": BaseMachineStep("submit"),
            "route": ExclusiveGateway("route", [("context.get('big')", "review")], default="wait"),
            "review": BaseHumanStep("review"),
            "wait": TimerStep("wait", duration=5),
            "hook": WebhookStep("hook"),
            "batch": SequentialGroup(BaseMachineStep("x"), BaseMachineStep("y")),
        },
        edges=[
            Edge("submit", "route"),
            Edge("route", "review"),
            Edge("route", "wait"),
            Edge("review", "hook", condition="context.get('approved') == True"),
            Edge("review", "batch", condition="context.get('approved') != True"),
            Edge("wait", "hook"),
            Edge("batch", "hook"),
        ],
        initial_step="submit",
        terminal_steps={"hook"},
    )


def test_every_step_type_has_its_shape_and_edges_their_labels() -> None:
    definition = _every_type()
    assert definition.validate() == []
    chart = definition.to_mermaid()
    assert chart.splitlines() == [
        "graph TD",
        '    s0["submit"]',
        '    s1{"route"}',
        '    s2[/"review"/]',
        '    s3(("wait"))',
        '    s4>"hook"]',
        '    s5["batch"]',
        "    s0 --> s1",
        "    s1 --> s2",
        "    s1 --> s3",
        "    s2 -->|\"context.get('approved') == True\"| s4",
        "    s2 -->|\"context.get('approved') != True\"| s5",
        "    s3 --> s4",
        "    s5 --> s4",
        "    classDef initial stroke-width:3px",
        "    class s0 initial",
        "    classDef terminal stroke-dasharray: 4 2",
        "    class s4 terminal",
    ]
    assert "current" not in chart


def test_current_step_is_highlighted() -> None:
    chart = _every_type().to_mermaid(current_step="review")
    lines = chart.splitlines()
    assert lines[-2] == "    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px"
    assert lines[-1] == "    class s2 current"
    assert [line for line in lines if line.endswith(" current")] == ["    class s2 current"]


def test_unknown_current_step_raises() -> None:
    with pytest.raises(ValueError, match="current_step 'ghost' is not a step of 'shapes'"):
        _every_type().to_mermaid(current_step="ghost")


def test_quotes_and_pipes_are_escaped() -> None:
    def is_vip(context: WorkflowContext) -> bool:
        return True

    is_vip.__name__ = "a|b"
    definition = WorkflowDefinition(
        name="q",
        steps={'say "hi"': BaseMachineStep('say "hi"'), "b": BaseMachineStep("b"), "c": BaseMachineStep("c")},
        edges=[Edge('say "hi"', "b", condition='context.get("x") == "y"'), Edge('say "hi"', "c", condition=is_vip)],
        initial_step='say "hi"',
        terminal_steps={"b", "c"},
    )
    chart = definition.to_mermaid(current_step='say "hi"')
    assert '    s0["say #quot;hi#quot;"]' in chart
    assert '    s0 -->|"context.get(#quot;x#quot;) == #quot;y#quot;"| s1' in chart
    assert '    s0 -->|"a#124;b"| s2' in chart
    # No raw quote or pipe is left inside any label.
    assert 'say "hi"' not in chart
    assert '"x"' not in chart
    assert "a|b" not in chart
