"""A district's Clever events: what changed, in order, for consumers that sync incrementally.

Clever keeps events for 30 days and answers a cursor older than that with 404; the log imitates
both with `expire()`. It is shared by the generated and the hand-made districts.
"""

from __future__ import annotations

import copy
import threading
import time

from roster_pipeline.sandbox.ids import COLLECTION_OF_KIND, event_id


class EventLog:
    """A district's Clever events: `<collection>.<created|updated|deleted>` with the full object.

    `expire()` drops every event logged so far, as if 30 days had passed: a consumer whose cursor
    pointed into them gets 404 and must resync. `enabled = False` answers /events with 403.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: list[dict] = []
        self.counter = 0
        self.enabled = True
        self.lock = threading.Lock()

    def record(self, kind: str, action: str, obj: dict, previous: dict | None = None) -> dict:
        with self.lock:
            self.counter += 1
            event = {
                "id": event_id(self.prefix, self.counter),
                "type": f"{COLLECTION_OF_KIND[kind]}.{action}",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "data": {"object": copy.deepcopy(obj)},
            }
            if previous:
                event["previous_attributes"] = previous
            self.events.append(event)
            return event

    def record_malformed(self, event: object) -> None:
        """Log `event` as given (no id, a number, ...): a hostile or broken Clever, for tests."""
        with self.lock:
            self.events.append(copy.deepcopy(event))

    def expire(self) -> None:
        with self.lock:
            self.events = []

    def page(self, starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        """Events after the cursor; LookupError when the cursor is unknown or past retention."""
        with self.lock:
            events = list(self.events)
        start = 0
        if starting_after:
            positions = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("id") == starting_after]
            if not positions:
                raise LookupError("starting_after is not a retained event (older than 30 days or unknown)")
            start = positions[0] + 1
        chunk = events[start:start + limit]
        ids = [e["id"] for e in chunk if isinstance(e, dict) and isinstance(e.get("id"), str)]  # skips malformed ones
        return chunk, (ids[-1] if ids and start + limit < len(events) else None)
