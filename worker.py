"""SAQ entry point: ``saq worker.settings`` starts a flowstar worker pool.

Configure it with environment variables (see ``flowstar.settings.FlowstarSettings``):
``FLOWSTAR_DATABASE_URL``, ``FLOWSTAR_REDIS_URL`` (unset: embedded Redis), ``FLOWSTAR_QUEUE``,
``FLOWSTAR_CONCURRENCY``, ``FLOWSTAR_REGISTRY`` (``package.module:registry``).
"""

from flowstar.saq.worker import build_settings

settings = build_settings
