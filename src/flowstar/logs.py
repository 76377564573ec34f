"""Logging for flowstar's processes: the worker, the demo and the command line.

``configure_logging()`` routes structlog and the standard library's ``logging`` (SAQ logs
through it) to one handler on stderr.  Tracebacks are plain, one line per frame, and never
show local variables: structlog's console renderer prints every frame's locals when ``rich``
or ``better-exceptions`` is installed, and a step's locals hold form data, tokens and
passwords.  ``FLOWSTAR_LOG_FORMAT=json`` writes one JSON object per line instead, with the
exception as a list of frames (file, line, function; again without locals).
``FLOWSTAR_LOG_LEVEL`` sets the level (default ``INFO``).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer

from flowstar.engine.activation import STEP_RUN, STEP_RUN_FIELDS
from flowstar.model.errors import ValidationError

if TYPE_CHECKING:
    from structlog.typing import ExcInfo, Processor

__all__ = ["LOG_FORMATS", "add_step_run", "configure_logging", "format_exception"]

LOG_FORMATS = ("console", "json")

_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def add_step_run(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the running step's ``instance_id``, ``workflow``, ``version``,
    ``step``, ``activation`` and ``attempt`` on every line logged while it runs.

    ``configure_logging`` installs it; a host that configures structlog itself adds it to
    its processors (values the line sets itself win).
    """
    run = STEP_RUN.get()
    if run is not None:
        for key, value in zip(STEP_RUN_FIELDS, run, strict=True):
            event_dict.setdefault(key, value)
    return event_dict


def format_exception(exc_info: ExcInfo) -> str:
    """A traceback with one line per frame (file, line, function, source) and no locals.

    Chained exceptions (``raise ... from ...`` and exceptions raised while handling another)
    come first, as in Python's own traceback.

    Args:
        exc_info: the ``(type, value, traceback)`` triple of ``sys.exc_info()``.

    Returns:
        The lines joined by newlines, ending with the exception's type and message.
    """
    return "\n".join(_lines(traceback.TracebackException(*exc_info, capture_locals=False)))


def _lines(exc: traceback.TracebackException) -> list[str]:
    lines: list[str] = []
    if exc.__cause__ is not None:
        lines += [*_lines(exc.__cause__), "", _CAUSE, ""]
    elif exc.__context__ is not None and not exc.__suppress_context__:
        lines += [*_lines(exc.__context__), "", _CONTEXT, ""]
    if exc.stack:
        lines.append("Traceback (most recent call last):")
        lines += [_frame_line(frame) for frame in exc.stack]
    lines += [line.rstrip("\n") for line in exc.format_exception_only()]
    return lines


def _frame_line(frame: traceback.FrameSummary) -> str:
    where = f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
    source = (frame.line or "").strip()
    return f"{where}: {source}" if source else where


def _one_line_per_frame(sio: TextIO, exc_info: ExcInfo) -> None:
    """``ConsoleRenderer``'s exception formatter: ``format_exception`` below the event."""
    sio.write("\n" + format_exception(exc_info))


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at set-up.

    A stream kept from set-up time may be closed later (a test's captured stderr, a
    redirected stream), and every record after that would fail.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # logging's contract: report through handleError, never raise
            self.handleError(record)


def _resolve_format(value: str | None) -> str:
    chosen = (value or os.environ.get("FLOWSTAR_LOG_FORMAT") or "console").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValidationError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {chosen!r}")
    return chosen


def _resolve_level(value: str | int | None) -> int:
    chosen: str | int = value if value is not None else os.environ.get("FLOWSTAR_LOG_LEVEL") or "INFO"
    if isinstance(chosen, int):
        return chosen
    number = logging.getLevelName(chosen.strip().upper())
    if not isinstance(number, int):
        raise ValidationError(f"log level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {chosen!r}")
    return number


def _renderer(log_format: str) -> list[Processor]:
    if log_format == "json":
        # One JSON object per line; an exception becomes a list of frames, without locals.
        return [ExceptionRenderer(ExceptionDictTransformer(show_locals=False)), structlog.processors.JSONRenderer()]
    colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    return [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_one_line_per_frame)]


def configure_logging(format: str | None = None, level: str | int | None = None) -> None:
    """Send structlog's and ``logging``'s records to stderr as plain lines or JSON lines.

    Safe to call more than once: the handler installed by an earlier call is replaced, and so
    are plain console handlers of the root logger (those ``logging.basicConfig`` installs,
    as the ``saq`` command does before it loads the worker settings), so that no record is
    printed twice.  Other handlers (files, test capture) are kept.

    Args:
        format: ``"console"`` (key=value lines, plain tracebacks) or ``"json"``; default
            ``FLOWSTAR_LOG_FORMAT``, else ``"console"``.
        level: a level name or number; default ``FLOWSTAR_LOG_LEVEL``, else ``INFO``.

    Raises:
        ValidationError: an unknown format or level.
    """
    log_format, log_level = _resolve_format(format), _resolve_level(level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_step_run,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Filtering in the bound logger makes a call below the level a no-op.
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderer(log_format)],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _StderrHandler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log_level)
    # SAQ logs every job it processes at INFO: that is a debugging aid, not an operator's log.
    logging.getLogger("saq").setLevel(log_level if log_level <= logging.DEBUG else max(log_level, logging.WARNING))
