"""Fan-out and joins: branches run concurrently, joins run once after every taken branch."""

from __future__ import annotations

import asyncio
from typing import Any

from flowstar import (
    BaseGateway,
    BaseHumanStep,
    Edge,
    ParallelGateway,
    StepStatus,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from flowstar.events import WorkflowFailed
from tests.unit.helpers import Fn, RecordingBus, Set, drain, eventually


def _fan(
    name: str, branches: list[Any], join: Any, *, start: Any = None, edges: list[Edge] | None = None
) -> WorkflowDefinition:
    start = start or Set("start", started=True)
    steps = {start.name: start, **{b.name: b for b in branches}, join.name: join}
    return WorkflowDefinition(
        name=name,
        steps=steps,
        edges=edges
        if edges is not None
        else [Edge(start.name, b.name) for b in branches] + [Edge(b.name, join.name) for b in branches],
        initial_step=start.name,
        terminal_steps={join.name},
    )


async def test_unconditional_edges_run_branches_concurrently(make_engine: Any) -> None:
    names = ["email", "slack", "sms"]
    started = {n: asyncio.Event() for n in names}

    def branch(name: str) -> Fn:
        async def body(context: WorkflowContext) -> None:
            started[name].set()
            # Each branch waits until every other branch has started: this can only finish
            # if the three run at the same time (the step timeout fails it otherwise).
            await asyncio.gather(*(e.wait() for e in started.values()))
            context.set(f"{name}_saw_others", [n for n in names if n != name and context.get(f"{n}_sent")])
            context.set(f"{name}_sent", True)

        return Fn(name, body, timeout=5)

    seen: dict[str, Any] = {}
    join = Fn("complete", lambda c: seen.update(c.data))
    engine = make_engine(_fan("notify", [branch(n) for n in names], join))
    instance = await engine.start_workflow("notify")
    assert instance.status is WorkflowStatus.COMPLETED, instance.error
    assert join.runs == 1
    for name in names:
        assert seen[f"{name}_sent"] is True
        # Branches run on their own snapshot: none saw another's write before the join.
        assert seen[f"{name}_saw_others"] == []
    assert instance.data == seen


async def test_join_runs_once_after_all_branches_and_sees_every_write(make_engine: Any) -> None:
    release = {n: asyncio.Event() for n in ("a", "b", "c")}
    finished = {n: asyncio.Event() for n in ("a", "b", "c")}
    order: list[str] = []

    def branch(name: str) -> Fn:
        async def body(context: WorkflowContext) -> None:
            await release[name].wait()
            order.append(name)
            context.set(f"result_{name}", name.upper())
            finished[name].set()

        return Fn(name, body)

    def joined(context: WorkflowContext) -> None:
        order.append("join")
        context.set("all", [context.get(f"result_{n}") for n in ("a", "b", "c")])

    join = Fn("join", joined)
    engine = make_engine(_fan("fan", [branch(n) for n in ("a", "b", "c")], join))

    async def release_in_order() -> None:
        # Each branch is let go only once the one before it has finished its body: the
        # branches finish in this order whatever the store's speed.
        for name in ("c", "a", "b"):
            release[name].set()
            await finished[name].wait()

    releaser = asyncio.create_task(release_in_order())
    instance = await engine.start_workflow("fan")
    await releaser
    assert instance.status is WorkflowStatus.COMPLETED
    assert order == ["c", "a", "b", "join"]
    assert join.runs == 1
    assert instance.data["all"] == ["A", "B", "C"]
    history = await engine.get_history(instance.id)
    assert [r.step_name for r in history].count("join") == 1


async def test_branch_not_taken_does_not_block_the_join(make_engine: Any) -> None:
    a, b, c = Set("a", a=1), Set("b", b=1), Set("c", c=1)
    join = Fn("join", lambda ctx: ctx.set("keys", sorted(k for k in ctx.data if len(k) == 1)))
    definition = _fan(
        "cond",
        [a, b, c],
        join,
        edges=[
            Edge("start", "a"),
            Edge("start", "b", condition="context.get('with_b') == True"),
            Edge("start", "c", condition="context.get('with_c') == True"),
            Edge("a", "join"),
            Edge("b", "join"),
            Edge("c", "join"),
        ],
    )
    engine = make_engine(definition)
    only_a = await engine.start_workflow("cond", {"with_b": False, "with_c": False})
    assert only_a.status is WorkflowStatus.COMPLETED
    assert only_a.data["keys"] == ["a"]
    a_and_c = await engine.start_workflow("cond", {"with_b": False, "with_c": True})
    assert a_and_c.data["keys"] == ["a", "c"]
    assert (a.runs, b.runs, c.runs, join.runs) == (2, 0, 1, 2)


async def test_join_after_a_gateway_choosing_two_of_three(make_engine: Any) -> None:
    class TwoOfThree(BaseGateway):
        async def evaluate(self, context: WorkflowContext) -> list[str]:
            return ["x", "z"]

    gate = asyncio.Event()

    async def slow_z(context: WorkflowContext) -> None:
        await gate.wait()
        context.set("z", True)

    x, y, z = Set("x", x=True), Set("y", y=True), Fn("z", slow_z)
    join = Fn("join", lambda ctx: ctx.set("join_saw", sorted(k for k in ("x", "y", "z") if ctx.get(k))))
    definition = WorkflowDefinition(
        name="pick",
        steps={"start": Set("start"), "gate": TwoOfThree("gate"), "x": x, "y": y, "z": z, "join": join},
        edges=[
            Edge("start", "gate"),
            Edge("gate", "x"),
            Edge("gate", "y"),
            Edge("gate", "z"),
            Edge("x", "join"),
            Edge("y", "join"),
            Edge("z", "join"),
        ],
        initial_step="start",
        terminal_steps={"join"},
    )
    engine = make_engine(definition)
    start = asyncio.create_task(engine.start_workflow("pick"))
    await eventually(lambda: x.runs == 1)
    await drain()
    assert join.runs == 0  # x arrived, z has not finished yet: the join waits for it
    gate.set()
    instance = await start
    assert instance.status is WorkflowStatus.COMPLETED
    assert (x.runs, y.runs, join.runs) == (1, 0, 1)
    assert instance.data["join_saw"] == ["x", "z"]


async def test_diamond_inside_a_diamond(make_engine: Any) -> None:
    # start -> (a -> (a1, a2) -> inner) and b; inner and b -> outer.  b finishes first and
    # a2 last, so the outer join has an arrival before the inner join fires.
    done = {n: asyncio.Event() for n in ("b", "a1")}
    order: list[str] = []

    def step(name: str, after: str | None = None) -> Fn:
        async def body(context: WorkflowContext) -> None:
            if after is not None:
                await done[after].wait()
            order.append(name)
            context.set(name, True)

        fn = Fn(name, body)
        return fn

    steps = [
        step("start"),
        step("a"),
        step("b"),
        step("a1", after="b"),
        step("a2", after="a1"),
        step("inner"),
        step("outer"),
    ]

    class Signal(RecordingBus):
        async def emit(self, event: Any) -> None:
            await super().emit(event)
            name = getattr(event, "step_name", None)
            if event.type == "StepCompleted" and name in done:
                done[name].set()

    definition = WorkflowDefinition(
        name="nested",
        steps={s.name: s for s in steps},
        edges=[
            Edge("start", "a"),
            Edge("start", "b"),
            Edge("a", "a1"),
            Edge("a", "a2"),
            Edge("a1", "inner"),
            Edge("a2", "inner"),
            Edge("inner", "outer"),
            Edge("b", "outer"),
        ],
        initial_step="start",
        terminal_steps={"outer"},
    )
    bus = Signal()
    engine = make_engine(definition, event_bus=bus)
    instance = await engine.start_workflow("nested")
    assert instance.status is WorkflowStatus.COMPLETED
    assert order.count("outer") == 1
    assert order.count("inner") == 1
    assert order.index("outer") > order.index("inner") > order.index("a2") > order.index("a1") > order.index("b")
    assert all(instance.data[n] for n in ("start", "a", "b", "a1", "a2", "inner", "outer"))
    completed = [name for kind, name in bus.summary() if kind == "StepCompleted"]
    assert completed.count("outer") == 1
    assert completed[-2:] == ["inner", "outer"]


async def test_parallel_gateway_fans_out_to_a_join(make_engine: Any) -> None:
    left, right = Set("left", left=1), Set("right", right=2)
    join = Fn("join", lambda c: c.set("sum", c.get("left") + c.get("right")))
    definition = WorkflowDefinition(
        name="pg",
        steps={"split": ParallelGateway("split", ["left", "right"]), "left": left, "right": right, "join": join},
        edges=[Edge("split", "left"), Edge("split", "right"), Edge("left", "join"), Edge("right", "join")],
        initial_step="split",
        terminal_steps={"join"},
    )
    engine = make_engine(definition)
    instance = await engine.start_workflow("pg")
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.data == {"left": 1, "right": 2, "sum": 3}
    assert join.runs == 1


async def test_join_waits_for_a_human_branch(make_engine: Any) -> None:
    compute = Set("compute", computed=True)
    join = Fn("join", lambda c: c.set("joined", [c.get("computed"), c.get("approved")]))
    definition = _fan("mixed", [compute, BaseHumanStep("review")], join)
    engine = make_engine(definition)
    instance = await engine.start_workflow("mixed")
    assert instance.status is WorkflowStatus.WAITING
    assert instance.data == {"started": True, "computed": True}
    assert join.runs == 0
    done = await engine.complete_human_task(instance.id, "review", "ann", {"approved": True})
    assert done.status is WorkflowStatus.COMPLETED
    assert done.data["joined"] == [True, True]
    assert join.runs == 1


async def test_a_failing_branch_fails_the_workflow_and_discards_the_others(make_engine: Any) -> None:
    failed, slow_started = asyncio.Event(), asyncio.Event()

    async def slow(context: WorkflowContext) -> None:
        slow_started.set()
        await failed.wait()
        context.set("slow_done", True)

    async def boom(context: WorkflowContext) -> None:
        await slow_started.wait()
        raise ValueError("branch broke")

    slow_step, join = Fn("slow", slow), Set("join", joined=True)
    bus = RecordingBus()

    async def on_failed(_event: Any) -> None:
        failed.set()

    bus.add_handler(on_failed, types=[WorkflowFailed])
    engine = make_engine(_fan("partial", [Fn("boom", boom), slow_step], join), event_bus=bus)
    instance = await engine.start_workflow("partial")
    assert slow_step.runs == 1  # it ran, but finished after the workflow had failed
    final = await engine.get_instance(instance.id)
    assert final.status is WorkflowStatus.FAILED
    assert final.failed_step == "boom"
    assert "slow_done" not in final.data
    assert join.runs == 0
    history = await engine.get_history(instance.id)
    assert [(r.step_name, r.status) for r in history if r.step_name != "start"] == [("boom", StepStatus.FAILED)]
    assert [t for t, _ in bus.summary()].count("WorkflowFailed") == 1
