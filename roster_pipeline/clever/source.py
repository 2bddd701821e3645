"""The dlt source for one Clever district: every collection as Arrow pages, tagged by district.

Usable without Dagster:

    pipeline = dlt.pipeline("clever_<district>", destination="duckdb", dataset_name="clever_raw")
    pipeline.run(clever_source(district_id, token, base_url))

Each table's rows carry `district_id`, and the write disposition replaces that district's
slice only (merge, delete-insert on the `district_id` merge key), so a refresh of one district
never touches another. A collection that comes back empty still yields an empty Arrow table,
so the table exists with its columns and `clear_emptied_tables` can clear stale rows.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Iterator, Mapping

import dlt
import pyarrow as pa
from pydantic import SecretStr

from roster_pipeline.clever.client import CleverClient
from roster_pipeline.clever.events import record_cursor
from roster_pipeline.clever.pages import id_pairs, lists_as_json, objects_to_arrow, pair_schema, table_schema
from roster_pipeline.clever.settings import (
    MAX_PAGE_SIZE,
    SECTION_PAIR_TABLES,
    TABLES,
)
from roster_pipeline.settings import DEFAULT_API_BASE_URL, clever_max_objects_per_collection

DISTRICT_SLICE = {"disposition": "merge", "strategy": "delete-insert"}
PROGRESS_LOGGER = "roster_pipeline.clever.progress"  # the Dagster layer forwards it into the run's log


class Progress:
    """Pages, rows and rate of one collection, logged as it is paged (a long sync says where it is)."""

    EVERY_SECONDS = 2.0  # at most one "paging" line per collection this often (each line is a run-log event)

    def __init__(self, table: str) -> None:
        self.table, self.pages, self.rows, self.started = table, 0, 0, time.monotonic()
        self.last_line = self.started
        self.log = logging.getLogger(PROGRESS_LOGGER)

    def _line(self, state: str) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return (f"{self.table}: {state} {self.pages} pages, {self.rows:,} rows in {elapsed:.1f}s "
                f"({self.rows / elapsed:,.0f} rows/s)")

    def page(self, rows: int) -> None:
        self.pages += 1
        self.rows += rows
        if time.monotonic() - self.last_line >= self.EVERY_SECONDS:
            self.last_line = time.monotonic()
            self.log.info(self._line("paging,"))

    def done(self) -> None:
        self.log.info(self._line("done,"))


@dlt.source(name="clever", max_table_nesting=0, root_key=False)
def clever_source(
    district_id: str,
    token: SecretStr | None = None,
    base_url: str = DEFAULT_API_BASE_URL,
    page_size: int = MAX_PAGE_SIZE,
    timeout: float = 60.0,
    record_events_cursor: bool = False,
    events_cursor: str | None = None,
    known_rows: dict[str, int] | None = None,
):
    """All Clever roster collections of one district (token: that district's bearer token).

    With `record_events_cursor`, the load also stores `events_cursor` (the newest Clever event
    before paging began) as the district's event cursor, in the same commit as the rows.
    `known_rows` (raw table → the district's rows now) caps each collection's paging (`object_cap`).
    """

    def collection(table: str) -> Iterator[pa.Table]:
        path, params, columns = TABLES[table]
        if token is None:
            raise ValueError(f"clever_source needs the district token to load {table}")
        # Section pages keep their id lists for the pair tables; other lists are stored as JSON text.
        shape = (lambda page: page) if table == "sections" else lists_as_json
        if table == "districts" and record_events_cursor:
            record_cursor(events_cursor)
        yielded = False
        progress = Progress(table)
        with CleverClient(base_url, token, district_id=district_id, page_size=page_size, timeout=timeout) as client:
            for objects in client.pages(path, params, max_objects=object_cap((known_rows or {}).get(table))):
                progress.page(len(objects))
                if objects:
                    yielded = True
                    yield shape(objects_to_arrow(objects, columns, district_id))
        progress.done()
        if not yielded:
            yield shape(table_schema(columns).empty_table())

    resources = []
    for table in TABLES:
        if table == "sections":
            continue
        resources.append(dlt.resource(
            collection(table), name=table, write_disposition=DISTRICT_SLICE, merge_key="district_id",
            table_name=table, parallelized=True,
        ))

    # Sections are paged once and fanned out: the section rows, and the student/teacher id
    # lists flattened into pair tables in Arrow (millions of pairs in a large district).
    section_pages = dlt.resource(collection("sections"), name="section_pages", selected=False, parallelized=True)
    list_columns = list(SECTION_PAIR_TABLES.values())

    @dlt.transformer(data_from=section_pages, name="sections", write_disposition=DISTRICT_SLICE,
                     merge_key="district_id")
    def sections(page: pa.Table) -> Iterator[pa.Table]:
        yield page.drop_columns(list_columns)

    def pairs(table: str):
        @dlt.transformer(data_from=section_pages, name=table, write_disposition=DISTRICT_SLICE,
                         merge_key="district_id")
        def transform(page: pa.Table) -> Iterator[pa.Table]:
            yield id_pairs(page, table, district_id) if page.num_rows else pair_schema(table).empty_table()

        return transform

    return [*resources, section_pages, sections, *(pairs(t) for t in SECTION_PAIR_TABLES)]


GROWTH_FACTOR, GROWTH_FLOOR = 10, 100_000


def object_cap(known_rows: int | None, env: Mapping[str, str] | None = None) -> int:
    """How many objects a collection may page before it is an error: a server that never ends its paging.

    A district grows (a new school year, more schools shared), but not tenfold overnight beyond
    100,000 objects; a first sync knows nothing and gets CLEVER_MAX_OBJECTS_PER_COLLECTION (5,000,000
    by default). Setting that variable makes it the cap of every collection, for a district that
    really did grow that much.
    """
    env = os.environ if env is None else env
    ceiling = clever_max_objects_per_collection(env)
    if not known_rows or (env.get("CLEVER_MAX_OBJECTS_PER_COLLECTION") or "").strip():
        return ceiling
    return min(ceiling, max(GROWTH_FACTOR * known_rows, GROWTH_FLOOR))


def raw_tables() -> list[str]:
    """Every raw table the source loads, in a stable order."""
    return [*TABLES, *SECTION_PAIR_TABLES]


def discard_unfinished_loads(pipeline: dlt.Pipeline) -> list[str]:
    """Throw away what a killed load left in the district's dlt folder; what was discarded.

    A sync killed after dlt extracted or normalized a package leaves it pending, and dlt's
    `run()` then loads that stale package *instead of* the data it is given (and returns as if
    done): the next sync would publish the killed run's (maybe days old) data, with its event
    cursor. A pending package is aborted instead (dlt restores its local state from before it;
    an aborted package never records a completed load, so its state never becomes the stored
    cursor); the next load pages Clever again. A sync killed while paging leaves an extract
    folder dlt never reuses (`normalize/<16 hex>`); it is removed. Each district has its own
    pipeline folder and one run at a time, so nothing here belongs to a live run.
    Needs the warehouse (an abort finishes through dlt's loader): call it during a turn.
    """
    discarded = []
    if pipeline.has_pending_data:
        discarded += [f"pending package {p}" for p in (*pipeline.list_extracted_load_packages(),
                                                      *pipeline.list_normalized_load_packages())]
        pipeline.abort_packages()
    normalize = Path(pipeline.working_dir) / "normalize"
    for folder in normalize.glob("*"):
        if folder.is_dir() and re.fullmatch(r"[0-9a-f]{16}", folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            discarded.append(f"unfinished extract {folder.name}")
    return discarded


def clear_emptied_tables(pipeline: dlt.Pipeline, district_id: str) -> list[str]:
    """Delete a district's old rows from tables its latest load left empty.

    delete-insert only deletes the district's rows when the new load has some for it, so a
    collection that became empty (every section unshared, say) would otherwise keep stale rows.
    """
    row_counts = pipeline.last_trace.last_normalize_info.row_counts
    emptied = [table for table in raw_tables() if row_counts.get(table, 0) == 0]
    with pipeline.sql_client() as client:
        for table in emptied:
            client.execute_sql(
                f"delete from {client.make_qualified_table_name(table)} where district_id = %s", district_id)
    return emptied
