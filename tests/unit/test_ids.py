"""Ids: canonical UUID text, unique, and not shared with a forked child."""

from __future__ import annotations

import os
import uuid

import pytest

from flowstar.engine.ids import new_id


def test_ids_are_canonical_uuid_text() -> None:
    for _ in range(600):  # more than one block of random bytes
        value = new_id()
        assert str(uuid.UUID(value)) == value


def test_ids_do_not_repeat_across_blocks() -> None:
    values = [new_id() for _ in range(5000)]
    assert len(set(values)) == len(values)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the next id it makes, then leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id != new_id()
