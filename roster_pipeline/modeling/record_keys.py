"""The columns that name a record of each checked table: ids for failure reports and the guard.

Apart from the contracts (contract_check.py) so that what only names records (the guard, the
reports) does not import pandera and ibis, a second and more of every process's start.
"""

from __future__ import annotations

from roster_pipeline.modeling.project import SqlProject, sql_project


def checked_tables(project: SqlProject | None = None) -> list[str]:
    """The tables with a contract: every mart, in the yml's order."""
    project = project or sql_project()
    marts = {m.name for m in project.marts()}
    return [name for name in project.docs if name in marts]


def record_keys() -> dict[str, tuple[str, ...]]:
    """The columns that name a record of each table in failure reports (ids, never personal values).

    From the marts' yml: a table's `meta.record_key`, else its declared key without `district_id`
    (a report is about one district's slice), else `district_id` itself (`districts`).
    """
    keys = {}
    for table in checked_tables():
        doc = sql_project().docs[table]
        declared = doc["key"][1] if doc["key"] else ()
        keys[table] = tuple(doc["meta"].get("record_key") or [c for c in declared if c != "district_id"] or declared)
    return keys


RECORD_KEYS = record_keys()


def record_id(values) -> str:
    """A key's values joined by `:`, empty text for NULL (as in roster_changes.record_id)."""
    return ":".join("" if v is None or v != v else str(v) for v in values)  # v != v: pandas' NaN
