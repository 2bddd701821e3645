"""The Clever API shape we load: endpoints, paging limits, and the columns kept per raw table.

Each raw table is described once here as (column, path in the Clever object, Arrow type), so a
reader finds the API shape in one place; `pages.py` turns pages into Arrow with it and
`source.py` loads them with dlt.
"""

from __future__ import annotations

import pyarrow as pa

MAX_PAGE_SIZE = 10000  # Clever's largest `limit`; above it the API answers 413
USER_AGENT = "roster-pipeline (+https://github.com/roster-pipeline)"
RAW_DATASET = "clever_raw"

S = pa.string()
LIST = pa.list_(pa.string())

Column = tuple[str, tuple[str, ...], pa.DataType]


def _user(role: str, *role_columns: Column) -> list[Column]:
    common: list[Column] = [
        ("id", ("id",), S), ("district", ("district",), S), ("email", ("email",), S),
        ("first_name", ("name", "first"), S), ("middle_name", ("name", "middle"), S),
        ("last_name", ("name", "last"), S), ("created", ("created",), S),
        ("last_modified", ("last_modified",), S),
    ]
    return common + [(name, ("roles", role, *path), kind) for name, path, kind in role_columns]


def _flat(*names: str) -> list[Column]:
    return [(name, (name,), S) for name in names]


# raw table → (collection path, query, columns)
TABLES: dict[str, tuple[str, dict[str, str], list[Column]]] = {
    "districts": ("districts", {}, _flat(
        "id", "name", "sis_type", "state", "last_sync", "pause_start", "pause_end", "nces_id", "mdr_number")),
    "schools": ("schools", {}, _flat(
        "id", "district", "name", "sis_id", "state_id", "nces_id", "school_number", "low_grade", "high_grade",
        "phone", "created", "last_modified") + [
        ("principal_name", ("principal", "name"), S), ("principal_email", ("principal", "email"), S),
        ("location_address", ("location", "address"), S), ("location_city", ("location", "city"), S),
        ("location_state", ("location", "state"), S), ("location_zip", ("location", "zip"), S),
    ]),
    "students": ("users", {"role": "student"}, _user(
        "student",
        *_flat("school", "sis_id", "state_id", "student_number", "dob", "gender", "grade", "graduation_year",
               "race", "hispanic_ethnicity", "ell_status", "frl_status", "iep_status", "section_504_status",
               "gifted_status", "home_language", "home_language_code"),
        ("schools", ("schools",), LIST),
        ("preferred_first_name", ("preferred_name", "first"), S),
        ("preferred_last_name", ("preferred_name", "last"), S),
        ("disability_status", ("disability", "disability_status"), S),
        ("disability_type", ("disability", "disability_type"), S),
        ("disability_code", ("disability", "disability_code"), S),
    )),
    "teachers": ("users", {"role": "teacher"}, _user(
        "teacher", *_flat("school", "sis_id", "state_id", "teacher_number", "title"), ("schools", ("schools",), LIST))),
    "staff": ("users", {"role": "staff"}, _user(
        "staff", *_flat("staff_id", "title", "department"), ("schools", ("schools",), LIST),
        ("staff_roles", ("roles",), LIST))),
    "district_admins": ("users", {"role": "district_admin"}, _user("district_admin", *_flat("title"))),
    "sections": ("sections", {}, _flat(
        "id", "district", "school", "name", "period", "section_number", "sis_id", "grade", "subject", "course",
        "term_id", "teacher", "created", "last_modified") + [
        ("teachers", ("teachers",), LIST), ("students", ("students",), LIST)]),
    "courses": ("courses", {}, _flat("id", "district", "name", "number")),
    "terms": ("terms", {}, _flat("id", "district", "name", "start_date", "end_date")),
}

# Tables derived from section pages: the id lists become flat (section_id, user_id) pairs.
SECTION_PAIR_TABLES = {"section_students": "students", "section_teachers": "teachers"}
# A teacher list keeps each id's place in it (0 for the first listed): a section whose `teacher` is
# null takes the first of its `teachers` as its primary. A student list's order means nothing, and
# its millions of pairs go without the column.
LIST_POSITION = "list_position"
ORDERED_PAIR_TABLES = ("section_teachers",)

# What the staging models filter and deduplicate on: a Postgres warehouse indexes these
# (postgres_tables.py); one district's slice is then found without scanning every district.
RAW_KEYS = {**{table: ("district_id", "id") for table in TABLES},
            **{table: ("district_id", "section_id", f"{role[:-1]}_id") for table, role in SECTION_PAIR_TABLES.items()}}
