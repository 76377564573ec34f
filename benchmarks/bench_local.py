"""flowstar's ``LocalExecutionEngine`` against litestar-workflows 0.3.3's, side by side.

Both engines run the same scenarios in one process, and the script prints one JSON object on
stdout with the median per engine and the ratio ours/theirs.  Progress goes to stderr.  See
``benchmarks/README.md`` for set-up and for what the numbers mean.

Scenarios (each with a fresh registry and engine per round, in-memory state):

- ``linear3``: start N instances of ``s1 -> s2 -> s3`` (three machine steps, each setting one
  context key) and wait for each to finish.
- ``human_roundtrip``: start N instances of ``submit -> approval (human) -> process``, wait
  until each waits at ``approval``, complete the task, wait until it settles again.

Modes: ``sequential`` awaits each instance end to end before the next one starts;
``concurrent`` runs instances in batches of ``--batch`` with ``asyncio.gather``.  Both
engines are driven the same way.

A round builds a fresh engine of each library and runs N instances on each, in slices of
``--slice`` instances that alternate between the engines (A, B, A, B, ...; B first in every
other round), so that the machine's drift within a round hits both alike.  An engine's round
time is the sum over its slices.  It counts an instance as completed only if, after the timed
part, its status is ``completed`` and its context holds every key the workflow sets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

OURS = "flowstar"
THEIRS = "litestar-workflows"
THEIRS_MODULE = "litestar_workflows"
THEIRS_VERSION = "0.3.3"

SCENARIOS = ("linear3", "human_roundtrip")
MODES = ("sequential", "concurrent")
LINEAR_KEYS = ("k1", "k2", "k3")
FORM_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string"}},
    "required": ["approved"],
}
FORM_DATA = {"approved": True, "comments": "benchmark"}
# Context keys a finished human_roundtrip instance must hold, with their values.
ROUNDTRIP_EXPECTED = {"submitted": True, "approved": True, "status": "processed"}
STEPS_PER_INSTANCE = {"linear3": 3, "human_roundtrip": 3}
TARGETS = {"min_ratio": 1.0, "goal_ratio": 1.5}

Op = Callable[[Any, int], Awaitable[Any]]


# -- the two engines behind one small interface --------------------------------------------


class Adapter:
    """Builds one engine per round and runs one instance of a scenario on it."""

    name: str
    version: str

    def new_engine(self, scenario: str) -> Any:
        raise NotImplementedError

    async def linear3(self, engine: Any, i: int) -> Any:
        """Start one instance and return its id once it has finished."""
        raise NotImplementedError

    async def human_roundtrip(self, engine: Any, i: int) -> Any:
        """Start, wait at the human step, complete it; return the id once it settled."""
        raise NotImplementedError

    async def outcome(self, engine: Any, instance_id: Any) -> tuple[str, dict[str, Any], int]:
        """The instance's status, its context data and how many steps succeeded."""
        raise NotImplementedError

    async def close(self, engine: Any) -> None:
        """Release the engine."""


class FlowstarAdapter(Adapter):
    name = OURS

    def __init__(self) -> None:
        import flowstar as fs

        self.fs = fs
        self.version = fs.__version__

        class SetKey(fs.BaseMachineStep):
            def __init__(self, name: str, key: str, value: Any = True) -> None:
                super().__init__(name)
                self.key = key
                self.value = value

            async def execute(self, context: Any) -> None:
                context.set(self.key, self.value)

        class Process(fs.BaseMachineStep):
            async def execute(self, context: Any) -> None:
                context.set("status", "processed" if context.get("approved") else "rejected")

        self.definitions = {
            "linear3": fs.WorkflowDefinition(
                name="bench_linear3",
                version="1.0.0",
                description="three machine steps",
                steps={f"s{n}": SetKey(f"s{n}", key) for n, key in enumerate(LINEAR_KEYS, 1)},
                edges=[fs.Edge("s1", "s2"), fs.Edge("s2", "s3")],
                initial_step="s1",
                terminal_steps={"s3"},
            ),
            "human_roundtrip": fs.WorkflowDefinition(
                name="bench_human",
                version="1.0.0",
                description="machine, human, machine",
                steps={
                    "submit": SetKey("submit", "submitted"),
                    "approval": fs.BaseHumanStep("approval", title="Approve", form_schema=FORM_SCHEMA),
                    "process": Process("process"),
                },
                edges=[fs.Edge("submit", "approval"), fs.Edge("approval", "process")],
                initial_step="submit",
                terminal_steps={"process"},
            ),
        }

    def new_engine(self, scenario: str) -> Any:
        registry = self.fs.WorkflowRegistry()
        registry.register_definition(self.definitions[scenario])
        return self.fs.LocalExecutionEngine(registry)

    async def linear3(self, engine: Any, i: int) -> Any:
        # start_workflow returns once the instance has settled (here: finished).
        instance = await engine.start_workflow("bench_linear3", initial_data={"n": i})
        return instance.id

    async def human_roundtrip(self, engine: Any, i: int) -> Any:
        instance = await engine.start_workflow("bench_human", initial_data={"n": i})
        await engine.complete_human_task(
            instance_id=instance.id, step_name="approval", user_id="bench@example.com", data=FORM_DATA
        )
        return instance.id

    async def outcome(self, engine: Any, instance_id: Any) -> tuple[str, dict[str, Any], int]:
        instance = await engine.get_instance(instance_id)
        succeeded = sum(1 for h in instance.context.step_history if h.status.value == "succeeded")
        return instance.status.value, dict(instance.context.data), succeeded

    async def close(self, engine: Any) -> None:
        await engine.close()


class ReferenceAdapter(Adapter):
    """litestar-workflows 0.3.3, used as its code allows (its README is ahead of it).

    In 0.3.3 the registry only has ``register(workflow_class)``, ``start_workflow`` takes a
    class with ``get_definition()``, steps take their name in ``__init__``, and
    ``start_workflow`` returns before any step ran (execution is a background task kept in
    ``engine._running``).  We await that task to know an instance settled: the cheapest
    exact signal it offers.
    """

    name = THEIRS

    def __init__(self) -> None:
        import litestar_workflows as lw

        self.lw = lw
        self.version = metadata.version(THEIRS)

        class SetKey(lw.BaseMachineStep):
            def __init__(self, name: str, key: str, value: Any = True) -> None:
                super().__init__(name)
                self.key = key
                self.value = value

            async def execute(self, context: Any) -> None:
                context.set(self.key, self.value)

        class Process(lw.BaseMachineStep):
            async def execute(self, context: Any) -> None:
                context.set("status", "processed" if context.get("approved") else "rejected")

        linear = lw.WorkflowDefinition(
            name="bench_linear3",
            version="1.0.0",
            description="three machine steps",
            steps={f"s{n}": SetKey(f"s{n}", key) for n, key in enumerate(LINEAR_KEYS, 1)},
            edges=[lw.Edge("s1", "s2"), lw.Edge("s2", "s3")],
            initial_step="s1",
            terminal_steps={"s3"},
        )
        human = lw.WorkflowDefinition(
            name="bench_human",
            version="1.0.0",
            description="machine, human, machine",
            steps={
                "submit": SetKey("submit", "submitted"),
                "approval": lw.BaseHumanStep("approval", title="Approve", form_schema=FORM_SCHEMA),
                "process": Process("process"),
            },
            edges=[lw.Edge("submit", "approval"), lw.Edge("approval", "process")],
            initial_step="submit",
            terminal_steps={"process"},
        )
        self.workflows = {"linear3": _workflow_class(linear), "human_roundtrip": _workflow_class(human)}

    def new_engine(self, scenario: str) -> Any:
        registry = self.lw.WorkflowRegistry()
        registry.register(self.workflows[scenario])
        return self.lw.LocalExecutionEngine(registry)

    @staticmethod
    async def _settled(engine: Any, instance_id: Any) -> None:
        task = engine._running.get(instance_id)
        if task is not None:
            await task

    async def linear3(self, engine: Any, i: int) -> Any:
        instance = await engine.start_workflow(self.workflows["linear3"], initial_data={"n": i})
        await self._settled(engine, instance.id)
        return instance.id

    async def human_roundtrip(self, engine: Any, i: int) -> Any:
        instance = await engine.start_workflow(self.workflows["human_roundtrip"], initial_data={"n": i})
        await self._settled(engine, instance.id)
        await engine.complete_human_task(
            instance_id=instance.id, step_name="approval", user_id="bench@example.com", data=dict(FORM_DATA)
        )
        # 0.3.3 leaves the finished task of the first run in ``_running``, so nothing resumes
        # the instance: it stays "running" at ``process``.  Awaiting returns at once.
        await self._settled(engine, instance.id)
        return instance.id

    async def outcome(self, engine: Any, instance_id: Any) -> tuple[str, dict[str, Any], int]:
        instance = await engine.get_instance(instance_id)
        succeeded = sum(1 for h in instance.context.step_history if h.status.value == "succeeded")
        return instance.status.value, dict(instance.context.data), succeeded


def _workflow_class(definition: Any) -> type:
    return type(
        f"Bench_{definition.name}",
        (),
        {
            "name": definition.name,
            "version": definition.version,
            "description": definition.description,
            "get_definition": classmethod(lambda cls: definition),
        },
    )


# -- measuring -----------------------------------------------------------------------------


def is_complete(scenario: str, status: str, data: dict[str, Any]) -> bool:
    """Whether a finished instance did everything its workflow should have."""
    if status != "completed":
        return False
    if scenario == "linear3":
        return all(data.get(key) is True for key in LINEAR_KEYS)
    return all(data.get(key) == value for key, value in ROUNDTRIP_EXPECTED.items())


@dataclass(frozen=True)
class Plan:
    """How the rounds of one scenario and mode drive the engines."""

    scenario: str
    mode: str
    instances: int
    batch: int
    slice_size: int


def slice_size(mode: str, requested: int, batch: int) -> int:
    """Instances per slice: in concurrent mode, rounded up to whole batches."""
    return requested if mode == "sequential" else -(-requested // batch) * batch


class Lane:
    """One engine's part of a round: a fresh engine, what it returned, its summed clocks."""

    def __init__(self, adapter: Adapter, scenario: str) -> None:
        self.adapter = adapter
        self.engine = adapter.new_engine(scenario)
        self.op: Op = getattr(adapter, scenario)
        self.ids: list[Any] = []
        self.errors: list[str] = []
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def _keep(self, result: Any) -> None:
        if isinstance(result, BaseException):
            self.errors.append(f"{type(result).__name__}: {result}")
        else:
            self.ids.append(result)

    async def run_slice(self, plan: Plan, first: int, stop: int) -> None:
        """Run instances ``first``..``stop - 1``, timed; add the time to the lane's clocks."""
        cpu_started = time.process_time()
        started = time.perf_counter()
        if plan.mode == "sequential":
            await self._one_by_one(first, stop)
        else:
            await self._in_batches(first, stop, plan.batch)
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu_started

    async def _one_by_one(self, first: int, stop: int) -> None:
        for i in range(first, stop):
            try:
                result = await self.op(self.engine, i)
            except Exception as exc:
                result = exc
            self._keep(result)

    async def _in_batches(self, first: int, stop: int, batch: int) -> None:
        for low in range(first, stop, batch):
            numbers = range(low, min(low + batch, stop))
            results = await asyncio.gather(*(self.op(self.engine, i) for i in numbers), return_exceptions=True)
            for result in results:
                self._keep(result)

    async def verify(self, scenario: str) -> dict[str, Any]:
        """Load every returned instance (untimed), close the engine, give the round's outcome."""
        completed = steps = 0
        statuses: dict[str, int] = {}
        for instance_id in self.ids:
            status, data, succeeded = await self.adapter.outcome(self.engine, instance_id)
            statuses[status] = statuses.get(status, 0) + 1
            steps += succeeded
            completed += is_complete(scenario, status, data)
        await self.adapter.close(self.engine)
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "completed": completed,
            "returned": len(self.ids),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "steps": steps,
            "statuses": statuses,
        }


async def run_round(adapters: list[Adapter], plan: Plan) -> dict[str, dict[str, Any]]:
    """One round: a fresh engine each, slices in the adapters' order, then verification."""
    lanes = [Lane(adapter, plan.scenario) for adapter in adapters]
    gc.collect()
    for first in range(0, plan.instances, plan.slice_size):
        stop = min(first + plan.slice_size, plan.instances)
        for lane in lanes:
            await lane.run_slice(plan, first, stop)
    return {lane.adapter.name: await lane.verify(plan.scenario) for lane in lanes}


def summarize(scenario: str, instances: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of one engine."""
    seconds = [r["seconds"] for r in rounds]
    summary: dict[str, Any] = {
        "rounds": len(rounds),
        "instances": instances,
        "median_seconds": round(statistics.median(seconds), 4),
        "median_instances_per_s": round(statistics.median(r["completed"] / r["seconds"] for r in rounds), 1),
        "median_steps_per_s": round(statistics.median(r["steps"] / r["seconds"] for r in rounds), 1),
        # CPU time of this process over the same span: steadier than wall time on a busy machine.
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in rounds), 4),
        "median_instances_per_cpu_s": round(
            statistics.median(r["completed"] / max(r["cpu_seconds"], 1e-9) for r in rounds), 1
        ),
        "completed": [r["completed"] for r in rounds],
        "all_completed": all(r["completed"] == instances for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "first_error": next((r["first_error"] for r in rounds if r["first_error"]), None),
        "final_statuses": rounds[-1]["statuses"],
        "instances_per_s_by_round": [round(r["completed"] / r["seconds"], 1) for r in rounds],
    }
    if scenario == "human_roundtrip":
        # Raw call throughput: start + complete_human_task pairs that returned without an
        # error, whatever state the instance was left in.
        summary["median_raw_roundtrips_per_s"] = round(
            statistics.median(r["returned"] / r["seconds"] for r in rounds), 1
        )
    return summary


def ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs > 0 else None


def paired_ratio(ours: list[float], theirs: list[float]) -> float | None:
    """The median over rounds of each round's ratio ours/theirs.

    The two engines of one round ran in alternating slices, so each round's ratio compares
    them under the same conditions; the median of those ratios keeps that pairing, which the
    ratio of the two medians (taken from different rounds) loses.
    """
    pairs = [o / t for o, t in zip(ours, theirs, strict=True) if t > 0]
    return round(statistics.median(pairs), 3) if pairs and len(pairs) == len(theirs) else None


def compare(scenario: str, per_engine: dict[str, Any]) -> dict[str, Any]:
    """Ratios ours/theirs and whether they meet the targets."""
    if OURS not in per_engine or THEIRS not in per_engine:
        return {"ratio": None, "note": "only one engine ran"}
    ours, theirs = per_engine[OURS], per_engine[THEIRS]
    by_round = list(zip(ours["instances_per_s_by_round"], theirs["instances_per_s_by_round"], strict=True))
    value = paired_ratio([o for o, _ in by_round], [t for _, t in by_round])
    result: dict[str, Any] = {
        "ratio": value,
        "ratio_by_round": [ratio(o, t) for o, t in by_round],
        "ratio_of_medians": ratio(ours["median_instances_per_s"], theirs["median_instances_per_s"]),
        "meets_min": value >= TARGETS["min_ratio"] if value is not None else ours["median_instances_per_s"] > 0,
        "meets_goal": value >= TARGETS["goal_ratio"] if value is not None else ours["median_instances_per_s"] > 0,
        "cpu_ratio": ratio(ours["median_instances_per_cpu_s"], theirs["median_instances_per_cpu_s"]),
    }
    if value is None:
        result["note"] = f"{THEIRS} completed no instance: the ratio of completed/s is undefined (infinite)"
    if scenario == "human_roundtrip":
        result["raw_roundtrip_ratio"] = ratio(
            ours["median_raw_roundtrips_per_s"], theirs["median_raw_roundtrips_per_s"]
        )
    return result


async def bench_mode(adapters: list[Adapter], plan: Plan, rounds: int) -> dict[str, Any]:
    """The warm-up round, the timed rounds, and the summaries of one scenario and mode."""
    await run_round(adapters, replace(plan, instances=min(plan.instances, 200)))  # warm-up, not recorded
    raw: dict[str, list[dict[str, Any]]] = {a.name: [] for a in adapters}
    for n in range(rounds):
        first = n % len(adapters)  # A first, then B first, ...
        outcomes = await run_round(adapters[first:] + adapters[:first], plan)
        for name, outcome in outcomes.items():
            raw[name].append(outcome)
            print(
                f"{plan.scenario}/{plan.mode} round {n + 1}/{rounds} {name}: "
                f"{outcome['completed']}/{plan.instances} completed in {outcome['seconds']:.3f}s",
                file=sys.stderr,
            )
    per_engine = {name: summarize(plan.scenario, plan.instances, r) for name, r in raw.items()}
    return {**per_engine, **compare(plan.scenario, per_engine)}


async def bench(
    adapters: list[Adapter],
    scenarios: list[str],
    modes: list[str],
    instances: int,
    rounds: int,
    batch: int,
    per_slice: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in scenarios:
        results[scenario] = {"steps_per_instance": STEPS_PER_INSTANCE[scenario], "modes": {}}
        for mode in modes:
            plan = Plan(scenario, mode, instances, batch, slice_size(mode, per_slice, batch))
            results[scenario]["modes"][mode] = await bench_mode(adapters, plan, rounds)
    return results


# -- command line --------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def select_engines(choice: str) -> tuple[list[Adapter], dict[str, Any]]:
    """The adapters to run and a description of both engines."""
    wanted = {OURS, THEIRS} if choice == "auto" else {e.strip() for e in choice.split(",") if e.strip()}
    unknown = wanted - {OURS, THEIRS}
    if unknown:
        raise SystemExit(f"unknown engine(s): {', '.join(sorted(unknown))}")
    installed = importlib.util.find_spec(THEIRS_MODULE) is not None
    adapters: list[Adapter] = []
    info: dict[str, Any] = {}
    if OURS in wanted:
        adapters.append(FlowstarAdapter())
        info[OURS] = {"status": "ran", "version": adapters[-1].version}
    else:
        info[OURS] = {"status": "not requested"}
    if THEIRS not in wanted:
        info[THEIRS] = {"status": "not requested"}
    elif not installed:
        if choice != "auto":
            raise SystemExit(f"{THEIRS} is not installed; pip install {THEIRS}=={THEIRS_VERSION}")
        info[THEIRS] = {"status": "not installed"}
    else:
        adapters.append(ReferenceAdapter())
        info[THEIRS] = {"status": "ran", "version": adapters[-1].version}
        if adapters[-1].version != THEIRS_VERSION:
            info[THEIRS]["warning"] = f"expected {THEIRS_VERSION}"
    if not adapters:
        raise SystemExit("no engine to run")
    return adapters, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 instances, 2 rounds (for tests)")
    parser.add_argument("--instances", type=int, help="instances per round (default 2000; 200 with --quick)")
    parser.add_argument("--rounds", type=int, help="timed rounds per engine (default 7; 2 with --quick)")
    parser.add_argument("--batch", type=int, default=100, help="instances per asyncio.gather in concurrent mode")
    parser.add_argument(
        "--slice",
        type=int,
        default=100,
        help="instances per engine before the other takes over (concurrent mode: rounded up to whole batches)",
    )
    parser.add_argument("--engines", default="auto", help=f"auto, or a comma list of {OURS},{THEIRS}")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of scenarios")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list: sequential,concurrent")
    args = parser.parse_args(argv)

    instances = args.instances or (200 if args.quick else 2000)
    rounds = args.rounds or (2 if args.quick else 7)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(scenarios) - set(SCENARIOS) or set(modes) - set(MODES) or min(instances, rounds, args.batch, args.slice) < 1:
        parser.error("bad --scenarios, --modes, --instances, --rounds, --batch or --slice")

    # Anything either library prints or logs must not corrupt the JSON on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        adapters, engines = select_engines(args.engines)
        results = asyncio.run(bench(adapters, scenarios, modes, instances, rounds, args.batch, args.slice))
    report = {
        "benchmark": "bench_local",
        "machine": machine_info(),
        "engines": engines,
        "config": {
            "quick": args.quick,
            "instances": instances,
            "rounds": rounds,
            "batch": args.batch,
            "slice": {mode: slice_size(mode, args.slice, args.batch) for mode in modes},
            "scenarios": scenarios,
            "modes": modes,
            "order": (
                "per round a fresh engine each; instances in slices alternating between the engines "
                "(A, B, A, B, ...), A first in odd rounds, B first in even ones; one warm-up round first"
            ),
            "statistic": "median over rounds; ratio: median of the rounds' ratios ours/theirs",
        },
        "targets": {**TARGETS, "metric": "median over rounds of completed instances/s ours/theirs in that round"},
        "scenarios": results,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
