"""Ids: RFC 9562 UUIDv7 in canonical text, increasing within a process, unique across a fork."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from flowstar.engine.ids import new_id
from flowstar.engine.views import as_uuid


def test_ids_are_canonical_uuidv7_text() -> None:
    for _ in range(600):
        value = new_id()
        parsed = uuid.UUID(value)
        assert str(parsed) == value  # canonical: lowercase, dashed
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122  # the variant RFC 9562 keeps (bits 10)


def test_an_id_starts_with_its_creation_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(value).int >> 80 <= after


def test_a_burst_of_100k_ids_is_unique_and_strictly_increasing() -> None:
    values = [new_id() for _ in range(100_000)]  # hundreds per millisecond, over dozens of them
    assert len(set(values)) == len(values)
    assert all(a < b for a, b in zip(values, values[1:], strict=False))  # text order
    numbers = [uuid.UUID(v).int for v in values]
    assert numbers == sorted(numbers)  # and the order of the 128-bit values


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_and_its_parent_never_make_the_same_id() -> None:
    new_id()  # the generator's state exists before the fork, as in a forking server
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: make ids at once (same milliseconds as the parent), report them
        try:
            made = "\n".join(new_id() for _ in range(5000)).encode()
            view = memoryview(made)
            while view:
                view = view[os.write(write, view) :]
        finally:
            os._exit(0)
    os.close(write)
    parent_ids = {new_id() for _ in range(5000)}
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    child_ids = set(b"".join(chunks).decode().split("\n"))
    assert len(child_ids) == 5000
    assert all(uuid.UUID(v).version == 7 for v in child_ids)
    assert not child_ids & parent_ids


def test_as_uuid_reads_canonical_and_other_forms_like_uuid() -> None:
    for _ in range(200):
        value = uuid.UUID(new_id())
        parsed = as_uuid(str(value))
        assert (parsed, str(parsed), hash(parsed), parsed.version) == (value, str(value), hash(value), 7)
    assert as_uuid("{12345678123456781234567812345678}") == uuid.UUID("12345678-1234-5678-1234-567812345678")
    with pytest.raises(ValueError, match="invalid literal"):
        as_uuid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz")
