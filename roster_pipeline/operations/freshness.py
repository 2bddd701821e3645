"""Is a district's published roster fresh? Published within ROSTER_FRESHNESS_HOURS, or paused by Clever.

A nightly refresh that silently stops (a revoked token, a run that keeps failing, a daemon that
is down) leaves yesterday's roster in place with nothing failing loudly; this is the check that
notices. While Clever pauses a district (the summer), its data cannot change, so an old publish
is not stale.
"""

from __future__ import annotations

from datetime import datetime


def freshness_verdict(published_at: datetime | None, now: datetime, hours: float, *, paused: bool = False,
                      last_failure: str | None = None) -> tuple[bool, str]:
    """(fresh, one sentence why): ids, times and reasons only."""
    if paused:
        return True, "Clever has paused this district's syncs; its data cannot change meanwhile."
    failure = f" The last failed run: {last_failure}" if last_failure else ""
    if published_at is None:
        return False, f"Never published.{failure}"
    age = (now - published_at).total_seconds() / 3600
    when = published_at.strftime("%Y-%m-%d %H:%M UTC")
    if age <= hours:
        return True, f"Published {when}, {age:.1f} h ago (limit {hours:g} h)."
    return False, f"Last published {when}, {age:.1f} h ago, over the {hours:g} h limit (ROSTER_FRESHNESS_HOURS).{failure}"
