"""The page cursor codec and the page-size bound (pure)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowstar import ValidationError
from flowstar.model.pages import MAX_LIMIT, check_limit, decode_cursor, encode_cursor, page_of

AT = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)
ID = "01a23e75-1490-74ec-9a62-2e740e89a8b6"


def test_a_cursor_round_trips_and_is_url_safe() -> None:
    cursor = encode_cursor("tasks", (AT, ID))
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor("tasks", cursor) == (AT, ID)
    other_zone = AT.astimezone(timezone(timedelta(hours=5)))
    assert decode_cursor("tasks", encode_cursor("tasks", (other_zone, ID)))[0] == AT


@pytest.mark.parametrize("bad", ["", "!!!", "AAAA", "a" * 7, "é"])
def test_malformed_cursors_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="cursor"):
        decode_cursor("tasks", bad)


def test_an_edited_cursor_or_another_lists_cursor_is_refused() -> None:
    cursor = encode_cursor("tasks", (AT, ID))
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-3] ^= 1  # a digit of the id
    edited = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(ValidationError):
        decode_cursor("tasks", edited)
    with pytest.raises(ValidationError):
        decode_cursor("instances", cursor)


def test_limits() -> None:
    assert check_limit(1) == 1
    assert check_limit(MAX_LIMIT) == MAX_LIMIT
    for bad in (0, MAX_LIMIT + 1, -5, True, 2.0, "10"):
        with pytest.raises(ValidationError, match="page size"):
            check_limit(bad)  # type: ignore[arg-type]


def test_page_of_cuts_the_extra_row_and_points_after_the_last_item() -> None:
    rows = [(AT + timedelta(seconds=n), f"id{n}") for n in range(4)]
    full = page_of("tasks", rows, 3, lambda r: r)
    assert full.items == rows[:3]
    assert full.next_cursor is not None
    assert decode_cursor("tasks", full.next_cursor) == rows[2]
    last = page_of("tasks", rows[:3], 3, lambda r: r)
    assert (last.items, last.next_cursor) == (rows[:3], None)
