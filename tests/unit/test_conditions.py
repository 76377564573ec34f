"""The safe condition language used by edges and exclusive gateways."""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import Any

import pytest

import flowstar.model.conditions as conditions_module
from flowstar import (
    Condition,
    ConditionEvaluationError,
    Edge,
    StepExecutionError,
    UnsafeExpressionError,
    ValidationError,
    WorkflowContext,
    WorkflowStatus,
)
from flowstar.model.conditions import MAX_EXPRESSION_LENGTH, MAX_NESTING, compile_condition
from tests.unit.helpers import Set

# -- what the language allows -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("context.get('score') >= 80", {"score": 85}, True),
        ("context.get('score') >= 80", {"score": 80}, True),
        ("context.get('score') >= 80", {"score": 79}, False),
        ("context.get('score') < 80", {"score": 79}, True),
        ("context['a'] == 1 and context.get('b') != 2", {"a": 1, "b": 3}, True),
        ("context['a'] == 1 and context.get('b') != 2", {"a": 1, "b": 2}, False),
        ("context.get('a') == 1 or context.get('b') == 1", {"a": 0, "b": 1}, True),
        ("context.get('a') == 1 or context.get('b') == 1", {"a": 0, "b": 0}, False),
        ("context.get('missing', 5) + 1 == 6", {}, True),
        ("context.get('missing') is None", {}, True),
        ("context.get('x') is not None", {"x": 0}, True),
        ("not context.get('flag')", {"flag": False}, True),
        ("not context.get('flag')", {"flag": True}, False),
        ("1 < context.get('n') <= 3", {"n": 3}, True),
        ("1 < context.get('n') <= 3", {"n": 1}, False),
        ("1 < context.get('n') <= 3", {"n": 4}, False),
        ("context.get('role') in ['admin', 'owner']", {"role": "owner"}, True),
        ("context.get('role') in ['admin', 'owner']", {"role": "guest"}, False),
        ("context.get('role') not in ('admin',)", {"role": "guest"}, True),
        ("'b' in {'a', 'b'}", {}, True),
        ("len(context.get('items')) > 2", {"items": [1, 2, 3]}, True),
        ("len(context.get('items')) > 2", {"items": [1, 2]}, False),
        ("min(context.get('a'), 3) == 1 and max(4, context.get('a')) == 4", {"a": 1}, True),
        ("abs(-2) == 2 and round(2.6) == 3", {}, True),
        ("str(5) == '5' and int('7') + float('0.5') == 7.5", {}, True),
        ("bool(0) is False and any([False, True]) and all([])", {}, True),
        ("sum([1, 2, 3]) == 6 and sum([0.5], 1) == 1.5", {}, True),
        ("context.get('name').lower().startswith('al')", {"name": "ALICE"}, True),
        ("context.get('name').strip().upper().endswith('CE')", {"name": " alice "}, True),
        ("('yes' if context.get('ok') else 'no') == 'yes'", {"ok": True}, True),
        ("('yes' if context.get('ok') else 'no') == 'yes'", {"ok": False}, False),
        ("context.get('d')['k'] == 1", {"d": {"k": 1}}, True),
        ("context['items'][1] == 'b'", {"items": ["a", "b"]}, True),
        ("{'a': 1}['a'] == 1", {}, True),
        ("-context.get('n') == -2 and +context.get('n') == 2", {"n": 2}, True),
        ("7 // 2 == 3 and 7 % 2 == 1 and 7 / 2 == 3.5 and 3 - 1 == 2", {}, True),
        ("'x' * 3 == 'xxx' and 3 * [0] == [0, 0, 0]", {}, True),
        ("10000 * 10000 == 100000000", {}, True),
        ("context.get('amount', 0) < 1000", {"amount": 250}, True),
        ("True", {}, True),
        ("None", {}, False),
        ("context['__class__'] == 'plain key'", {"__class__": "plain key"}, True),
    ],
)
def test_allowed_expressions_evaluate_right(source: str, data: dict[str, Any], expected: bool) -> None:
    condition = Condition(source)
    result = condition(data)
    assert result is expected


def test_condition_result_is_a_bool_even_for_truthy_values() -> None:
    assert Condition("context.get('name')")({"name": "x"}) is True
    assert Condition("context.get('name')")({"name": ""}) is False
    assert Condition("context.get('a') or context.get('b')")({"a": 0, "b": [1]}) is True


def test_condition_keeps_its_source_and_compile_condition_builds_one() -> None:
    condition = compile_condition("context.get('a') == 1")
    assert isinstance(condition, Condition)
    assert condition.source == "context.get('a') == 1"
    assert repr(condition) == "Condition(\"context.get('a') == 1\")"


# -- what it rejects, at construction ---------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("__import__('os')", "call of '__import__'"),
        ("__import__('os').system('true')", "method .system()"),
        ("context.__class__", "Attribute expressions are not allowed"),
        ("context.get.__globals__", "Attribute expressions are not allowed"),
        ("().__class__.__bases__", "Attribute expressions are not allowed"),
        ("'x'.__class__", "Attribute expressions are not allowed"),
        ("(lambda: 1)()", "call of 'lambda: 1'"),
        ("lambda: 1", "Lambda"),
        ("[x for x in context.get('a')]", "ListComp"),
        ("any(x for x in [1])", "GeneratorExp"),
        ("{x: 1 for x in [1]}", "DictComp"),
        ("{x for x in [1]}", "SetComp"),
        ("2 ** 8", "Pow"),
        ("'x' * 10**9", "Pow"),
        ("(y := 1)", "NamedExpr"),
        ("f'{context}' == ''", "JoinedStr"),
        ("os", "unknown name 'os'"),
        ("x == 1", "unknown name 'x'"),
        ("__builtins__", "unknown name '__builtins__'"),
        ("context", "'context' may only be used as context.get(...) or context[...]"),
        ("len(context) > 0", "'context' may only be used"),
        ("open('/etc/passwd')", "call of 'open'"),
        ("getattr(1, 'real')", "call of 'getattr'"),
        ("getattr(context, 'get')", "'context' may only be used"),
        ("eval('1')", "call of 'eval'"),
        ("type(1)", "call of 'type'"),
        ("context.items()", "context.items(...)"),
        ("context.get()", "only context.get(key[, default])"),
        ("context.get('a', 1, 2)", "only context.get(key[, default])"),
        ("context.get('a').format()", "method .format()"),
        ("'{0.__class__}'.format(1)", "method .format()"),
        ("context.get(key='a')", "keyword arguments"),
        ("len(*[[1]])", "argument unpacking"),
        ("context.get('a')[1:2]", "slices"),
        ("b'x' == b'x'", "constant of type bytes"),
        ("1j == 1j", "constant of type complex"),
        ("... == 1", "constant of type ellipsis"),
        ("1 << 2", "LShift"),
        ("1 | 2", "BitOr"),
        ("~1", "Invert"),
        ("context.get('a') @ 1", "MatMult"),
        ("{**context.get('a')}", "dict unpacking"),
        ("[*context.get('a')]", "Starred"),
        ("context.get('a'); 1", "malformed"),
        ("context.get('a' >=", "malformed"),
        ("import os", "malformed"),
        ("x = 1", "malformed"),
        ("", "non-empty"),
        ("   ", "non-empty"),
    ],
)
def test_unsafe_or_malformed_expressions_are_rejected_at_construction(source: str, problem: str) -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        Condition(source)
    assert problem in str(info.value)


def test_rejection_message_names_the_expression_and_column() -> None:
    with pytest.raises(
        UnsafeExpressionError, match=r"'context.get\(\"a\"\) \+ os': unknown name 'os' \(at column 19\)"
    ):
        Condition('context.get("a") + os')


def test_too_long_expressions_are_rejected() -> None:
    source = "1 == 1 and " * (MAX_EXPRESSION_LENGTH // 11 + 1) + "True"
    assert len(source) > MAX_EXPRESSION_LENGTH
    with pytest.raises(UnsafeExpressionError, match=f"the limit is {MAX_EXPRESSION_LENGTH}"):
        Condition(source)
    fitting = "1 == 1 and " * 100 + "True"
    assert Condition(fitting)({}) is True


@pytest.mark.parametrize("source", ["-" * 1990 + "1", "1" + " + 1" * 60, "not " * 60 + "True"])
def test_deeply_nested_expressions_are_refused_not_a_recursion_error(source: str) -> None:
    with pytest.raises(UnsafeExpressionError, match=f"nested more than {MAX_NESTING} levels deep"):
        Condition(source)
    shallow = "1" + " + 1" * 40
    assert Condition(shallow + " == 41")({}) is True


def test_a_lone_surrogate_is_a_malformed_condition() -> None:
    with pytest.raises(UnsafeExpressionError, match="malformed condition"):
        Condition("context.get('\ud800')")


def test_non_string_source_is_rejected() -> None:
    with pytest.raises(UnsafeExpressionError, match="non-empty string"):
        Condition(42)  # type: ignore[arg-type]


def test_unsafe_expression_error_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Condition("__import__('os')")


def test_edges_compile_their_condition_when_built() -> None:
    with pytest.raises(UnsafeExpressionError, match="Attribute"):
        Edge("a", "b", condition="context.__class__")


# -- evaluation limits and runtime errors -----------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'x' * 1000000000 == ''", "repetition count 1000000000 exceeds"),
        ("1000000000 * 'x' == ''", "repetition count 1000000000 exceeds"),
        ("len(('x' * 10000) * 10000) > 0", "repetition would build 100000000 items"),
        ("len([0] * 10000 * 10000) > 0", "repetition would build 100000000 items"),
        ("len('x' * 10000 * 10000 * 10000) > 0", "repetition would build"),
        ("len(context.get('big') * 2) > 0", "repetition would build 120000 items"),
        ("len(('x' * 10000) * 6 + ('y' * 10000) * 6) > 0", "concatenation would build 120000 items"),
        ("len(context.get('big') + context.get('big')) > 0", "concatenation would build 120000 items"),
        ("'%999999999s' % 'x' == ''", "string formatting with % is not allowed"),
        ("sum([[0] * 100] * 100, []) == []", "sum() adds numbers only"),
    ],
)
def test_blowups_fail_at_evaluation_with_a_clear_error(source: str, message: str) -> None:
    condition = Condition(source)  # well-formed: accepted when built
    with pytest.raises(ConditionEvaluationError, match=re.escape(message)):
        condition({"big": "z" * 60000})


def test_runtime_error_names_the_condition_and_the_cause() -> None:
    condition = Condition("context.get('score') >= 80")
    with pytest.raises(ConditionEvaluationError) as info:
        condition({"score": None})
    text = str(info.value)
    assert "context.get('score') >= 80" in text
    assert "TypeError" in text
    assert isinstance(info.value, StepExecutionError)
    assert isinstance(info.value.__cause__, TypeError)


def test_missing_key_with_subscript_is_a_condition_error() -> None:
    with pytest.raises(ConditionEvaluationError, match="KeyError"):
        Condition("context['nope'] == 1")({})


def test_string_methods_only_apply_to_strings() -> None:
    with pytest.raises(ConditionEvaluationError, match=r"\.lower\(\) is only allowed on strings"):
        Condition("context.get('n').lower() == 'a'")({"n": 1})


def test_int_of_a_huge_digit_string_fails_cleanly() -> None:
    with pytest.raises(ConditionEvaluationError, match="ValueError"):
        Condition("int(context.get('digits')) > 0")({"digits": "9" * 5000})


def test_short_circuit_skips_the_failing_operand() -> None:
    assert Condition("context.get('x') is not None and context.get('x') > 1")({}) is False
    assert Condition("context.get('x') is None or context.get('x') > 1")({}) is True


# -- no eval / exec ---------------------------------------------------------------------


def test_source_never_calls_eval_or_exec() -> None:
    source = Path(conditions_module.__file__).read_text()
    assert not re.search(r"(?<![\w.])(eval|exec)\s*\(", source)
    assert "import builtins" not in source


def test_conditions_compile_and_run_without_eval_or_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("eval/exec must not be used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    condition = Condition("len(context.get('items', [])) >= 2 and context.get('name', '').lower() == 'bob'")
    assert condition({"items": [1, 2], "name": "BOB"}) is True
    assert condition({"items": [1], "name": "BOB"}) is False
    edge = Edge("a", "b", condition="context.get('score') >= 80")
    assert edge.matches(WorkflowContext(data={"score": 90})) is True


# -- conditions inside a running workflow -----------------------------------------------


def _review_definition(condition_high: Any, condition_low: Any) -> Any:
    from flowstar import WorkflowDefinition

    return WorkflowDefinition(
        name="review",
        steps={
            "review": Set("review"),
            "approve": Set("approve", result="approved"),
            "reject": Set("reject", result="rejected"),
        },
        edges=[
            Edge("review", "approve", condition=condition_high),
            Edge("review", "reject", condition=condition_low),
        ],
        initial_step="review",
        terminal_steps={"approve", "reject"},
    )


@pytest.mark.parametrize(("score", "expected"), [(80, "approved"), (95, "approved"), (79, "rejected")])
async def test_string_conditions_route_the_workflow(make_engine: Any, score: int, expected: str) -> None:
    engine = make_engine(_review_definition("context.get('score') >= 80", "context.get('score') < 80"))
    instance = await engine.start_workflow("review", {"score": score})
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.context.get("result") == expected
    assert instance.current_step == ("approve" if expected == "approved" else "reject")


@pytest.mark.parametrize(("score", "expected"), [(80, "approved"), (10, "rejected")])
async def test_callable_conditions_route_the_workflow(make_engine: Any, score: int, expected: str) -> None:
    def high(context: WorkflowContext) -> bool:
        return bool(context.get("score") >= 80)

    def low(context: WorkflowContext) -> bool:
        return bool(context.get("score") < 80)

    engine = make_engine(_review_definition(high, low))
    instance = await engine.start_workflow("review", {"score": score})
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.context.get("result") == expected


async def test_condition_raising_at_runtime_fails_the_workflow_naming_it(make_engine: Any) -> None:
    engine = make_engine(_review_definition("context.get('score') >= 80", "context.get('score') < 80"))
    instance = await engine.start_workflow("review", {"score": None})
    assert instance.status is WorkflowStatus.FAILED
    assert instance.failed_step == "review"
    assert instance.error is not None
    assert "context.get('score') >= 80" in instance.error
    assert "TypeError" in instance.error
    history = await engine.get_history(instance.id)
    assert [r.step_name for r in history] == ["review"]


async def test_callable_condition_raising_fails_the_workflow(make_engine: Any) -> None:
    def broken(context: WorkflowContext) -> bool:
        raise KeyError("no score")

    engine = make_engine(_review_definition(broken, "context.get('score') < 80"))
    instance = await engine.start_workflow("review", {"score": 1})
    assert instance.status is WorkflowStatus.FAILED
    assert instance.error is not None
    assert "condition 'broken' failed: KeyError" in instance.error
    assert "no score" in instance.error


async def test_no_matching_edge_fails_the_workflow_clearly(make_engine: Any) -> None:
    engine = make_engine(_review_definition("context.get('score') > 90", "context.get('score') < 10"))
    instance = await engine.start_workflow("review", {"score": 50})
    assert instance.status is WorkflowStatus.FAILED
    assert instance.error == "no edge out of step 'review' matched the context"
    assert instance.failed_step == "review"
