"""Ids of the generated districts' objects, and what they encode.

A generated id has Clever's shape (24 hex digits) and carries its own position: an 8-digit
district prefix (a hash of seed and district number), a 2-digit kind code and the object's index
in 14 digits. So ids sort by kind, then index (users of every role page in one order), and a
`starting_after=<id>` cursor turns back into a position without any lookup table.
"""

from __future__ import annotations

import hashlib

# Kind codes live in the id, so ids sort by kind then index (users of every role page in one order).
KIND_CODES = {
    "district": 0x01, "school": 0x02, "student": 0x03, "teacher": 0x04, "staff": 0x05,
    "district_admin": 0x06, "section": 0x07, "course": 0x08, "term": 0x09,
}
CODE_KINDS = {v: k for k, v in KIND_CODES.items()}
EVENT_KIND = 0x0A  # events take the next code, so their ids never collide with an object's
USER_ROLES = ("student", "teacher", "staff", "district_admin")

COLLECTION_OF_KIND = {
    "district": "districts", "school": "schools", "student": "users", "teacher": "users", "staff": "users",
    "district_admin": "users", "section": "sections", "course": "courses", "term": "terms",
}


def district_prefix(seed: int, number: int) -> str:
    """The 8 hex digits every id of one generated district starts with."""
    return hashlib.sha256(f"district-{seed}-{number}".encode()).hexdigest()[:8]


def district_token(seed: int, number: int) -> str:
    """The bearer token the sandbox issues for one generated district."""
    return "sbx_" + hashlib.sha256(f"token-{seed}-{number}".encode()).hexdigest()[:36]


def object_id(prefix: str, kind: str, index: int) -> str:
    return f"{prefix}{KIND_CODES[kind]:02x}{index:014x}"


def event_id(prefix: str, counter: int) -> str:
    return f"{prefix}{EVENT_KIND:02x}{counter:014x}"


def token_record_id(prefix: str) -> str:
    """The id of a district's entry in `/oauth/tokens` (kind code ff, which no object uses)."""
    return f"{prefix}ffffffffffffffff"


def parse_object_id(prefix: str, object_id: str) -> tuple[str, int] | None:
    """Id → (kind, index) for ids that start with `prefix`; None for anything else."""
    if len(object_id) != 24 or not object_id.startswith(prefix):
        return None
    try:
        kind = CODE_KINDS.get(int(object_id[8:10], 16))
        index = int(object_id[10:], 16)
    except ValueError:
        return None
    return (kind, index) if kind else None
