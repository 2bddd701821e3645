"""A district written object by object, for tests and demos of specific dirty cases.

Where a generated district answers from its spec, this one serves exactly the objects it was
given, in their order, and logs Clever events when a test creates, replaces or deletes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from roster_pipeline.sandbox.event_log import EventLog


@dataclass
class HandmadeDistrict:
    """A district given object by object (tests and demos of specific dirty cases).

    `objects` maps a kind (school, student, teacher, staff, district_admin, section, course,
    term, district) to its objects in the order they are served; tests may change it between syncs.
    """

    id: str
    token: str
    objects: dict[str, list[dict]]
    share_by_schools: bool = False

    @property
    def token_record_id(self) -> str:
        return self.id[:8] + "f" * 16

    def _listing(self, kinds: tuple[str, ...]) -> list[dict]:
        return [obj for kind in kinds for obj in self.objects.get(kind, [])]

    def page(self, kinds: tuple[str, ...], starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        listing = self._listing(kinds)
        start = 0
        if starting_after:
            positions = [i for i, obj in enumerate(listing) if isinstance(obj, dict) and obj.get("id") == starting_after]
            if not positions:
                raise ValueError("starting_after is not an id of this collection")
            start = positions[0] + 1
        chunk = listing[start:start + limit]
        more = start + limit < len(listing)
        return chunk, (chunk[-1].get("id") if more else None)

    def find(self, kinds: tuple[str, ...], object_id: str) -> dict | None:
        return next((obj for obj in self._listing(kinds) if obj.get("id") == object_id), None)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(self.id[:8])

    def upsert(self, kind: str, obj: dict) -> dict:
        """Create or replace an object, and log the matching event."""
        listing = self.objects.setdefault(kind, [])
        for position, existing in enumerate(listing):
            if existing.get("id") == obj["id"]:
                listing[position] = obj
                previous = {k: v for k, v in existing.items() if obj.get(k) != v}
                return self.events.record(kind, "updated", obj, previous)
        listing.append(obj)
        return self.events.record(kind, "created", obj)

    def delete(self, kind: str, object_id: str) -> dict:
        listing = self.objects.get(kind, [])
        obj = next(o for o in listing if o.get("id") == object_id)
        listing.remove(obj)
        return self.events.record(kind, "deleted", obj)
