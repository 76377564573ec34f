"""Module paths of the reference documents (``flowstar.core.events``), kept as aliases.

The implementation lives in ``flowstar.model`` and ``flowstar.events``; these modules re-export
it unchanged, so both import paths give the same objects.
"""
