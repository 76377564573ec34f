"""The distributed runtime on SAQ (``pip install 'flowstar[saq,db]'``)."""

from flowstar.saq.dispatcher import JOB_FUNCTION, JobOptions, SAQDispatcher, job_key
from flowstar.saq.engine import SAQExecutionEngine
from flowstar.saq.jobs import run_activation
from flowstar.saq.reconciler import Reconciler
from flowstar.saq.relay import OutboxRelay
from flowstar.saq.worker import build_engine, build_settings

__all__ = [
    "JOB_FUNCTION",
    "JobOptions",
    "OutboxRelay",
    "Reconciler",
    "SAQDispatcher",
    "SAQExecutionEngine",
    "build_engine",
    "build_settings",
    "job_key",
    "run_activation",
]
