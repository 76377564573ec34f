"""Alembic migrations for flowstar's tables (applied with ``flowstar db upgrade``)."""
