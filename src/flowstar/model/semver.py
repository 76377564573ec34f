"""Semantic-version ordering (semver 2.0.0 precedence) for picking a workflow's latest version."""

from __future__ import annotations

import re

__all__ = ["is_semver", "semver_key"]

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def is_semver(version: str) -> bool:
    """Whether ``version`` is a valid semantic version such as ``1.2.3`` or ``2.0.0-rc.1``."""
    return isinstance(version, str) and bool(_SEMVER.match(version))


def semver_key(version: str) -> SemverKey:
    """A sort key: ``1.10.0`` > ``1.9.0``; a pre-release sorts before its release.

    Raises:
        ValueError: ``version`` is not a semantic version.
    """
    match = _SEMVER.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        # A release outranks every pre-release of the same version.
        return (int(major), int(minor), int(patch), 1, ())
    idents = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split("."))
    return (int(major), int(minor), int(patch), 0, idents)
