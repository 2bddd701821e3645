"""Injected failures, so tests and drills can see the pipeline survive a bad night at Clever.

Set through `POST /sandbox/faults` (JSON body):
`{"status": 429, "count": 2, "reset_in": 1}` answers the next two data requests with 429,
`{"status": 503, "count": 3}` with 503, `{"status": "drop"|"truncate", "count": 2}`
closes the connection before answering or half way through the page, `{"status": "slow",
"delay": 5, "count": 1}` answers late (`"after": N` lets N requests through first),
`{"stuck_cursor": true}` makes `next` links repeat the current cursor, `{"rate": 0.05}` fails
that share of requests at random (half 429, half 503). `POST /sandbox/faults` with `{}` clears them.
"""

from __future__ import annotations

import random
import threading


class Faults:
    """Injected failures, shared by all request threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.status: int | str = 0
        self.delay = 0.0
        self.after = 0  # requests served normally before the faults start
        self.count = 0
        self.reset_in = 1
        self.stuck_cursor = False
        self.rate = 0.0
        self.random = random.Random(0)

    def configure(self, body: dict) -> None:
        with self.lock:
            self.clear()
            status = body.get("status", 0)
            self.status = status if status in ("drop", "truncate", "slow") else int(status)
            self.delay = float(body.get("delay", 0.0))
            self.after = int(body.get("after", 0))
            self.count = int(body.get("count", 0))
            self.reset_in = int(body.get("reset_in", 1))
            self.stuck_cursor = bool(body.get("stuck_cursor", False))
            self.rate = float(body.get("rate", 0.0))

    def next_fault(self) -> int | str:
        with self.lock:
            if self.after > 0:
                self.after -= 1
                return 0
            if self.count > 0:
                self.count -= 1
                return self.status
            if self.rate and self.random.random() < self.rate:
                return self.random.choice([429, 503])
            return 0
