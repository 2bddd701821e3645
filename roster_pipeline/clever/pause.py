"""Clever's pause of a district's syncs (from about two days before the last school day until two
weeks before school starts): while it lasts, Clever serves the same roster, so it cannot change."""

from __future__ import annotations

from datetime import datetime


def clever_paused(state: str | None, pause_start: datetime | None, pause_end: datetime | None, now: datetime) -> bool:
    """The district object's `state` says paused, or now falls between its `pause_start` and `pause_end`."""
    if state == "paused":
        return True
    return pause_start is not None and pause_start <= now and (pause_end is None or now < pause_end)
