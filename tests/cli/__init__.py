"""Tests of the ``flowstar`` command line."""
