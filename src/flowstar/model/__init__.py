"""The pure core: definitions, context, statuses, events, conditions and transitions.

Nothing in this package does I/O or imports asyncio, redis, sqlalchemy or litestar.
"""
