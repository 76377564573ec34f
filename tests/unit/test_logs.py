"""configure_logging: plain tracebacks one line per frame, no locals, JSON lines on request."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from flowstar import LocalExecutionEngine, WorkflowContext, WorkflowRegistry
from flowstar.engine.activation import STEP_RUN
from flowstar.logs import configure_logging, format_exception
from flowstar.model.errors import ValidationError
from tests.unit.helpers import Fn, linear

SECRET = "s3cr3t-card-4111-1111"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saq_level = logging.getLogger("saq").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("saq").setLevel(saq_level)
    structlog.reset_defaults()


def _charge(form: dict[str, Any]) -> None:
    card_number = form["card"]  # a local a locals-printing traceback would show
    api_token = f"token-{card_number}"
    raise RuntimeError(f"payment gateway refused the charge ({len(api_token)} chars sent)")


def _step(data: dict[str, Any]) -> None:
    password = data["password"]
    _charge({"card": password})


def _failing_step() -> BaseException:
    try:
        _step({"password": SECRET})
    except RuntimeError as exc:
        structlog.get_logger("flowstar.worker").exception("step crashed", step="charge")
        return exc
    raise AssertionError("the step did not raise")


def _frames(exc: BaseException) -> list[traceback.FrameSummary]:
    return traceback.extract_tb(exc.__traceback__)


def test_console_traceback_has_one_line_per_frame_and_no_locals(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "INFO")
    exc = _failing_step()
    err = capsys.readouterr().err
    assert SECRET not in err
    assert "step crashed" in err
    lines = err.splitlines()
    frame_lines = [line for line in lines if line.startswith('  File "')]
    frames = _frames(exc)
    assert len(frames) == 3  # _failing_step -> _step -> _charge
    assert frame_lines == [
        f'  File "{f.filename}", line {f.lineno}, in {f.name}: {(f.line or "").strip()}' for f in frames
    ]
    # nothing between the frames: no source excerpts, carets or variable dumps
    first = lines.index(frame_lines[0])
    assert lines[first : first + len(frames)] == frame_lines
    assert lines[first + len(frames)] == "RuntimeError: payment gateway refused the charge (27 chars sent)"


def test_json_lines_parse_and_carry_frames_without_locals(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    structlog.get_logger("flowstar.worker").info("worker ready", queue="q")
    exc = _failing_step()
    err = capsys.readouterr().err
    assert SECRET not in err
    records = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    assert [(r["event"], r["level"], r["logger"]) for r in records] == [
        ("worker ready", "info", "flowstar.worker"),
        ("step crashed", "error", "flowstar.worker"),
    ]
    assert records[0]["queue"] == "q"
    (error,) = records[1]["exception"]
    assert error["exc_type"] == "RuntimeError"
    assert [(f["name"], f["lineno"]) for f in error["frames"]] == [(f.name, f.lineno) for f in _frames(exc)]
    assert all("locals" not in f for f in error["frames"])


def test_stdlib_records_like_saqs_share_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    try:
        _step({"password": SECRET})
    except RuntimeError:
        logging.getLogger("saq").exception("Error processing job %s", "job-1")
    logging.getLogger("saq").info("Processing job-2")  # SAQ's per-job INFO lines stay out
    err = capsys.readouterr().err
    assert SECRET not in err
    (record,) = [json.loads(line) for line in err.splitlines()]
    assert (record["event"], record["logger"], record["level"]) == ("Error processing job job-1", "saq", "error")
    assert record["exception"][0]["frames"][-1]["name"] == "_charge"


def test_environment_chooses_format_and_level(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTAR_LOG_FORMAT", "JSON")
    monkeypatch.setenv("FLOWSTAR_LOG_LEVEL", "warning")
    configure_logging()
    log = structlog.get_logger("flowstar.test")
    log.info("below the level")
    log.warning("kept", n=1)
    logging.getLogger("other").info("below the level too")
    (record,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (record["event"], record["level"], record["n"]) == ("kept", "warning", 1)


def test_calling_again_replaces_the_handler_and_basic_config_output(capsys: pytest.CaptureFixture[str]) -> None:
    logging.basicConfig(level=logging.WARNING)  # what the ``saq`` command does before loading settings
    configure_logging("console", "INFO")
    configure_logging("json", "INFO")
    structlog.get_logger("flowstar.test").warning("once")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["once"]


@pytest.mark.parametrize(("fmt", "level"), [("yaml", None), (None, "LOUD"), ("console", "")])
def test_bad_format_or_level_is_a_validation_error(fmt: str | None, level: str | None) -> None:
    with pytest.raises(ValidationError, match="log (format|level)"):
        configure_logging(fmt, level)


def test_format_exception_keeps_the_chain_in_order() -> None:
    try:
        try:
            _step({"password": SECRET})
        except RuntimeError as exc:
            raise LookupError("no receipt") from exc
    except LookupError as exc:
        text = format_exception((type(exc), exc, exc.__traceback__))
    assert SECRET not in text
    assert text.index("RuntimeError: payment gateway") < text.index("direct cause") < text.index("LookupError")
    assert text.endswith("LookupError: no receipt")


@pytest.mark.parametrize("logs", [True, False])
def test_worker_settings_configure_logging_unless_told_not_to(logs: bool) -> None:
    from flowstar.logs import _StderrHandler
    from flowstar.saq.worker import build_settings
    from flowstar.settings import FlowstarSettings

    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _StderrHandler)]
    # A Redis URL: nothing is started or contacted while the settings are built.
    build_settings(FlowstarSettings(redis_url="redis://127.0.0.1:6379/15"), logs=logs)
    assert sum(isinstance(h, _StderrHandler) for h in root.handlers) == (1 if logs else 0)


async def test_a_steps_own_log_lines_name_its_run(capsys: pytest.CaptureFixture[str]) -> None:
    """structlog calls inside a step carry the instance, workflow, version, step, activation and attempt."""

    def log_inside(context: WorkflowContext) -> None:
        structlog.get_logger("my.app").info("charging", amount=12)

    registry = WorkflowRegistry()
    registry.register_definition(linear("billing", Fn("charge", log_inside), version="2.1.0"))
    configure_logging("json", "INFO")
    engine = LocalExecutionEngine(registry)
    instance = await engine.start_workflow("billing")
    (record,) = await engine.get_history(instance.id)  # a run's record has its activation's id
    await engine.close()
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    (line,) = [r for r in records if r["event"] == "charging"]
    assert {k: line[k] for k in ("instance_id", "workflow", "version", "step", "attempt", "amount")} == {
        "instance_id": str(instance.id),
        "workflow": "billing",
        "version": "2.1.0",
        "step": "charge",
        "attempt": 1,
        "amount": 12,
    }
    assert line["activation"] == record.id
    assert STEP_RUN.get() is None  # the step's fields end with the step
    assert all("instance_id" not in r for r in records if r["event"] != "charging")
