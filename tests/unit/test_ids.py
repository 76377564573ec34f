"""Ids: canonical UUID text, unique, not shared with a forked child, and read back as UUIDs."""

from __future__ import annotations

import os
import uuid

import pytest

from flowstar.engine.ids import new_id
from flowstar.engine.views import as_uuid


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


def test_as_uuid_reads_canonical_and_other_forms_like_uuid() -> None:
    for _ in range(200):
        value = uuid.uuid4()
        parsed = as_uuid(str(value))
        assert (parsed, str(parsed), hash(parsed), parsed.version) == (value, str(value), hash(value), 4)
    assert as_uuid("{12345678123456781234567812345678}") == uuid.UUID("12345678-1234-5678-1234-567812345678")
    with pytest.raises(ValueError, match="invalid literal"):
        as_uuid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz")


def test_block_formatting_keeps_every_random_bit_in_order() -> None:
    from flowstar.engine.ids import _format_block

    random_bytes = os.urandom(16 * 7)
    formatted = _format_block(random_bytes)
    assert [uuid.UUID(value).bytes for value in formatted] == [
        random_bytes[i : i + 16] for i in range(0, len(random_bytes), 16)
    ]
    assert all(str(uuid.UUID(value)) == value for value in formatted)
