"""Clever's own sync of a district's SIS (its `last_sync`): every sync of ours succeeds while the
district's SIS stops reaching Clever, so an old `last_sync` is the one sign, for `status` and the pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

SIS_STALE = "Clever has not synced this district's SIS since {date}"


def sis_stale_since(last_sync: datetime | None, paused: bool, now: datetime, days: int) -> datetime | None:
    """`last_sync` when it is more than `days` (ROSTER_SIS_STALE_DAYS) before `now`, else None.

    Unknown (Clever sent none) or paused (Clever's summer pause stops SIS syncs on purpose, and says
    so itself) is not flagged.
    """
    if last_sync is None or paused:
        return None
    if last_sync.tzinfo is None:
        last_sync = last_sync.replace(tzinfo=timezone.utc)
    return last_sync if now - last_sync > timedelta(days=days) else None
