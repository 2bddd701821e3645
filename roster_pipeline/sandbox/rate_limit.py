"""Clever's rate limit: a budget of requests per token per minute, reported in `X-RateLimit-*` headers.

The server answers 429 once a token's budget for the current minute is spent, as Clever does.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Clever's budget: a fixed number of requests per token per minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[int, int]] = {}

    def take(self, token: str) -> tuple[int, int]:
        """Count one request; return (remaining, reset epoch seconds)."""
        window = int(time.time()) // 60
        with self.lock:
            start, used = self.windows.get(token, (window, 0))
            if start != window:
                start, used = window, 0
            used += 1
            self.windows[token] = (start, used)
        return self.per_minute - used, (window + 1) * 60
