"""The pages show tested code only: every Python block of a page is an included example file.

A Python block holds nothing but ``--8<-- "docs/examples/<file>.py[:section]"`` lines (and
blank lines between them); each named file and section must exist, and every example file
must appear on some page (a file no page shows would be tested for nothing).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.conftest import DOCS, EXAMPLES, ROOT, example_files

# Pages whose Python blocks are tested where they are written (none left).
NOT_CONVERTED: frozenset[str] = frozenset()
PYTHON_BLOCK = re.compile(r"^(?P<fence>```+|~~~+) ?(?:python|py)\b[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S)
INCLUDE = re.compile(r'^\s*--8<-- "(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"\s*$')


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).as_posix() not in NOT_CONVERTED)


def _includes(page: Path) -> list[tuple[str, str | None]]:
    found = []
    for block in PYTHON_BLOCK.finditer(page.read_text()):
        for line in filter(str.strip, block["body"].splitlines()):
            match = INCLUDE.match(line)
            assert match is not None, f"{page.relative_to(ROOT)}: untested Python in a code block: {line!r}"
            found.append((match["file"], match["section"]))
    return found


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_python_blocks_only_include_example_files(page: Path) -> None:
    for name, section in _includes(page):
        path = ROOT / name
        assert path.parent == EXAMPLES, f"{page.name} includes {name}, not a docs example"
        assert path.is_file(), f"{page.name} includes {name}, which does not exist"
        if section is not None:
            text = path.read_text()
            for edge in ("start", "end"):
                assert f"# --8<-- [{edge}:{section}]" in text, f"{name} has no [{edge}:{section}] marker"


def test_every_example_is_shown_on_a_page() -> None:
    shown = {ROOT / name for page in _pages() for name, _ in _includes(page)}
    missing = [p.name for p in example_files() if p not in shown and not p.name.startswith("_")]
    assert missing == []


def test_the_pattern_sees_inline_python() -> None:
    """The check above would catch a block written inline."""
    page = "```python\nprint('untested')\n```\n"
    (block,) = PYTHON_BLOCK.finditer(page)
    assert INCLUDE.match(block["body"].splitlines()[0]) is None
