"""Paging a generated district's collections, Clever style, straight from a cursor.

An id encodes (kind, index), so `starting_after=<id>` is a position: a page is found by scanning
forward from it, never by listing what came before. That keeps the last page of a
1,000,000-student district as cheap as the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class PositionedDistrict(Protocol):
    """What paging needs of a district whose objects are addressed by (kind, index)."""

    def count(self, kind: str) -> int: ...
    def exists(self, kind: str, index: int) -> bool: ...
    def visible(self, kind: str, index: int) -> bool: ...
    def build(self, kind: str, index: int) -> dict: ...
    def make_id(self, kind: str, index: int) -> str: ...
    def parse_id(self, object_id: str) -> tuple[str, int] | None: ...


def page(district: PositionedDistrict, kinds: tuple[str, ...], starting_after: str | None,
         limit: int) -> tuple[list[dict], str | None]:
    """One page of a collection: (objects, cursor for `next` or None). ValueError on a foreign cursor."""
    after = None
    if starting_after:
        after = district.parse_id(starting_after)
        if after is None or after[0] not in kinds:
            raise ValueError("starting_after is not an id of this collection")
    objects, last, more = scan(district, kinds, after, limit)
    return objects, (district.make_id(*last) if more else None)


def find(district: PositionedDistrict, kinds: tuple[str, ...], object_id: str) -> dict | None:
    """One object by id, if it is of one of `kinds` and shared with the application."""
    parsed = district.parse_id(object_id)
    if parsed is None or parsed[0] not in kinds or not district.visible(*parsed):
        return None
    return district.build(*parsed)


def scan(district: PositionedDistrict, kinds: tuple[str, ...], after: tuple[str, int] | None,
         limit: int) -> tuple[list[dict], tuple[str, int] | None, bool]:
    """One page: scan up to `limit` existing objects after the cursor, keep the shared ones.

    Returns (objects, last scanned position, more remain). Unshared objects still use up the
    scan, so a Share-by-Schools district yields short or empty pages that carry `next`, as
    Clever does.
    """
    found: list[dict] = []
    scanned = 0
    last = after
    for kind, index in positions(district, kinds, after):
        if scanned == limit:
            return found, last, True
        scanned += 1
        last = (kind, index)
        if district.visible(kind, index):
            found.append(district.build(kind, index))
    return found, last, False


def positions(district: PositionedDistrict, kinds: tuple[str, ...],
              after: tuple[str, int] | None) -> Iterator[tuple[str, int]]:
    """Every existing (kind, index) after the cursor, kinds in the collection's order."""
    first_kind, first_index = (0, 0) if after is None else (kinds.index(after[0]), after[1] + 1)
    for position in range(first_kind, len(kinds)):
        kind = kinds[position]
        start = first_index if position == first_kind else 0
        for index in range(start, district.count(kind)):
            if district.exists(kind, index):
                yield kind, index
