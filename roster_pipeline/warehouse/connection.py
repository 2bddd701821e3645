"""`ROSTER_WAREHOUSE` → the DuckDB file or Postgres database the pipeline writes.

One object knows the warehouse's kind, the dlt destination and pipeline that load raw data
into it, and how to open a plain SQL connection (the SQL models, checks, publish, reports, the CLI).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import dlt
from filelock import FileLock, Timeout

from roster_pipeline.clever.settings import RAW_DATASET
from roster_pipeline.settings import ConfigError, RosterError, duckdb_file, validate_district_id
from roster_pipeline.warehouse.dialect import bound_parameters, placeholder, positional_marker

LOCK_WAIT_SECONDS = 3 * 3600  # longer than any single district's turn on the file
# Postgres session memory for the pipeline's own connections (the server default is 4 MB). The
# foreign-key checks are `key IN (parent keys)` per row, which Postgres hashes only when the
# parent keys fit in this memory (about 80 MB for a 1M-student district); otherwise it re-runs
# the subquery for every row and a large district's check takes hours. Sorts and hashes of the
# models (deduplication, EXCEPT ALL) stay in memory too. Per sort or hash node, per session.
POSTGRES_WORK_MEM = "256MB"
POSTGRES_SESSION_OPTIONS = f"-c work_mem={POSTGRES_WORK_MEM} -c maintenance_work_mem=512MB"
CLAIM_LOCK_CLASS = 27_2027  # the first key of our advisory locks: one district's sync (district_claim)


class WarehouseUnavailable(RosterError):
    """The warehouse cannot be opened or written now; the message says which file or server and why."""


def _writable_folder(folder: Path, what: str) -> None:
    """Create `folder` if needed and prove a file can be written there, or say so in one sentence."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".roster-pipeline-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise WarehouseUnavailable(f"{what} folder {folder} cannot be written ({exc.strerror or exc}).") from None


@dataclass(frozen=True)
class Warehouse:
    url: str
    dlt_dir: Path

    @property
    def kind(self) -> str:
        """`duckdb` or `postgres`: the Dagster kind tag and the SQL dialect."""
        return "duckdb" if urlsplit(self.url).scheme == "duckdb" else "postgres"

    @property
    def duckdb_path(self) -> Path:
        return duckdb_file(self.url)

    @property
    def analyst_path(self) -> Path:
        """The DuckDB copy analysts open (see analyst_copy.py); the pipeline's own file is not for readers."""
        path = self.duckdb_path
        return path.with_name(f"{path.stem}_for_analysts.duckdb")

    @property
    def demographics_path(self) -> Path:
        """The DuckDB copy of the `demographics` tables, for the people allowed to see them (analyst_copy.py)."""
        path = self.duckdb_path
        return path.with_name(f"{path.stem}_demographics.duckdb")

    @property
    def placeholder(self) -> str:
        """The DB-API parameter marker of the warehouse's driver."""
        return positional_marker(self.kind)

    @property
    def display(self) -> str:
        """Where the data is, without a password."""
        if self.kind == "duckdb":
            return str(self.duckdb_path)
        parts = urlsplit(self.url)
        return f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"

    def check_ready(self) -> None:
        """Fail before any work, in one sentence, if the warehouse cannot be opened and written.

        Covers an unwritable folder, a DuckDB file held open by another program, and a Postgres
        server that is down or refuses the login; the CLI calls this before it starts a run.
        """
        _writable_folder(self.dlt_dir, "ROSTER_DATA_DIR's dlt")
        if self.kind == "duckdb":
            _writable_folder(self.duckdb_path.parent, "The DuckDB warehouse's")
        with self.connect():
            pass

    def destination(self):
        if self.kind == "duckdb":
            _writable_folder(self.duckdb_path.parent, "The DuckDB warehouse's")
            return dlt.destinations.duckdb(str(self.duckdb_path))
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.parse_native_representation(self.url)
        if credentials.password is None:  # trust or peer auth: dlt insists on a (possibly empty) password
            credentials.password = ""
        return dlt.destinations.postgres(credentials=credentials)

    def raw_pipeline(self, district_id: str) -> dlt.Pipeline:
        """One dlt pipeline per district: its own state, the shared raw dataset."""
        validate_district_id(district_id, "district partition")
        _writable_folder(self.dlt_dir, "ROSTER_DATA_DIR's dlt")
        return dlt.pipeline(
            pipeline_name=f"clever_{district_id}", destination=self.destination(),
            dataset_name=RAW_DATASET, pipelines_dir=str(self.dlt_dir), progress=None,
        )

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This process's turn on the DuckDB file (nothing to wait for on Postgres).

        DuckDB lets one process at a time open a file; another gets "Could not set lock on file"
        at once. With this lock, runs in parallel processes (two nightly batches on two cores)
        take turns instead of failing, and do their Python-heavy work (Dagster events, check
        compilation, paging) between turns. Re-entrant within a process, across its threads,
        as DuckDB's own lock is: nested connections in one process share one database.
        """
        if self.kind != "duckdb":
            yield
            return
        self.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{self.duckdb_path}.lock", timeout=LOCK_WAIT_SECONDS, thread_local=False, is_singleton=True)
        try:
            lock.acquire()
        except Timeout:
            raise RuntimeError(f"The DuckDB warehouse {self.duckdb_path} stayed in use by another process for "
                               f"{LOCK_WAIT_SECONDS}s (see {lock.lock_file}).") from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def held_open(self) -> Iterator[None]:
        """A turn (see `turn`) with the DuckDB file kept open through it, for a step of many connections.

        Opening the file reads its catalog and closing its last connection checkpoints it: about
        25 ms each, some 20 times a district. While one connection stays open, the others this
        process opens share its database and cost about 2 ms (DuckDB's own instance cache).
        Nothing to hold on Postgres.
        """
        if self.kind != "duckdb":
            yield
            return
        with self.turn():
            keeper = self._open(read_only=False)
            try:
                yield
            finally:
                keeper.close()

    @contextmanager
    def district_claim(self, district_id: str, timeout: float, poll: float = 1.0) -> Iterator[bool]:
        """Hold the claim on one district's sync; yields False when another holder kept it past `timeout`.

        Two syncs of one district must never run side by side (two processes checking "is a run of
        it in progress?" both see none, and both publish). A lock the operating system or the
        database releases when its holder dies takes and releases the claim in one step each, and
        a killed holder needs nobody to clean up after it: on DuckDB (one machine, one file) an
        flock next to the warehouse file; on Postgres a session advisory lock in the warehouse.
        """
        validate_district_id(district_id, "district claim")
        if self.kind == "duckdb":
            lock = FileLock(self.duckdb_path.with_name(f".{self.duckdb_path.name}.{district_id}.claim"),
                            timeout=timeout, thread_local=False)
            try:
                lock.acquire(poll_interval=poll)
            except Timeout:
                yield False
                return
            try:
                yield True
            finally:
                lock.release()
            return
        conn = self._open(read_only=False)
        conn.autocommit = True
        try:
            deadline, cursor = time.monotonic() + timeout, conn.cursor()
            while True:
                cursor.execute("select pg_try_advisory_lock(%s, hashtext(%s))", [CLAIM_LOCK_CLASS, district_id])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(poll)
            yield True  # closing the session releases the lock, as a dead holder's does
        finally:
            conn.close()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator:
        """A DB-API connection (DuckDB, during this process's turn, or psycopg2) that is closed afterwards."""
        if self.kind == "duckdb" and read_only and not self.duckdb_path.exists():
            raise ConfigError(f"ROSTER_WAREHOUSE points at {self.duckdb_path}, which does not exist yet; run a sync first.")
        with self.turn():
            conn = self._open(read_only)
            try:
                yield conn
            finally:
                conn.close()

    def _open(self, read_only: bool):
        if self.kind == "duckdb":
            import duckdb

            try:
                conn = duckdb.connect(str(self.duckdb_path), read_only=read_only)
            except duckdb.IOException as exc:
                raise self._duckdb_unavailable(exc) from None
            # Our tables have no row order (every reader sorts); unordered inserts let DuckDB
            # write in parallel (publish and the analysts' copy ~15% faster at 1M students).
            conn.execute("set preserve_insertion_order = false")
            return conn
        import psycopg2

        try:
            return psycopg2.connect(self.url, options=POSTGRES_SESSION_OPTIONS)
        except psycopg2.OperationalError as exc:
            reason = " ".join(str(exc).strip().splitlines()[0].split())
            raise WarehouseUnavailable(f"The Postgres warehouse {self.display} (ROSTER_WAREHOUSE) is unreachable "
                                       f"or refused the login: {reason}.") from None

    def _duckdb_unavailable(self, exc: Exception) -> WarehouseUnavailable:
        """DuckDB's lock error names the other process; say which file and what readers should open."""
        text = str(exc)
        if "lock" not in text.lower():
            return WarehouseUnavailable(f"The DuckDB warehouse {self.duckdb_path} cannot be opened: {text.splitlines()[0]}")
        pid = re.search(r"PID (\d+)", text)
        holder = f"another process (PID {pid.group(1)})" if pid else "another process"
        return WarehouseUnavailable(
            f"The pipeline's DuckDB file {self.duckdb_path} is held open by {holder}; close it there, and point "
            f"readers at the analysts' copy {self.analyst_path}, which never blocks the pipeline.")

    @contextmanager
    def session(self) -> Iterator["Session"]:
        """One connection for many transactions (a district's ~30 model builds share it)."""
        with self.connect() as conn:
            yield Session(conn, self.kind)

    @contextmanager
    def transaction(self) -> Iterator["Statements"]:
        """One transaction: everything executed through it commits together or not at all."""
        with self.session() as session, session.transaction() as sql:
            yield sql

    def forget_district(self, district_id: str) -> dict[str, int]:
        """Delete a district from every table that has a district_id, and its dlt state; one transaction."""
        validate_district_id(district_id, "--district")
        deleted: dict[str, int] = {}
        with self.transaction() as sql:
            p = self.placeholder
            tables = sql.execute(
                "select table_schema, table_name from information_schema.columns where column_name = 'district_id' "
                f"and table_schema in ({p}, {p}, 'roster_build', 'roster') and table_name in "
                "(select table_name from information_schema.tables where table_type = 'BASE TABLE')",
                [RAW_DATASET, f"{RAW_DATASET}_staging"]).fetchall()  # dlt's merge staging holds copies
            for schema, table in tables:
                count = sql.execute(f"select count(*) from {schema}.{table} where district_id = {p}", [district_id]).fetchone()[0]
                sql.execute(f"delete from {schema}.{table} where district_id = {p}", [district_id])
                deleted[f"{schema}.{table}"] = count
            state = sql.execute(
                "select count(*) from information_schema.tables where table_schema = "
                f"{p} and table_name = '_dlt_pipeline_state'", [RAW_DATASET]).fetchone()[0]
            if state:
                sql.execute(f"delete from {RAW_DATASET}._dlt_pipeline_state where pipeline_name = {p}",
                            [f"clever_{district_id}"])
        shutil.rmtree(self.dlt_dir / f"clever_{district_id}", ignore_errors=True)
        if self.kind == "duckdb":
            self.rewrite_duckdb_file()
        return deleted

    def rewrite_duckdb_file(self) -> None:
        """Copy the DuckDB warehouse into a new file and put it in place of the old one.

        A delete only marks DuckDB's blocks free: the deleted rows' bytes stay in the file until
        something overwrites them. After `forget`, nothing of the district may stay on disk, so
        the file is rewritten from what is left (`COPY FROM DATABASE`: tables, views, data).
        """
        fresh = self.duckdb_path.with_name(f".{self.duckdb_path.name}.{os.getpid()}.rewrite")
        fresh.unlink(missing_ok=True)
        with self.connect() as conn:  # the turn stays held until the new file is in place
            name = conn.execute("select current_database()").fetchone()[0]
            conn.execute(f"attach '{str(fresh).replace(chr(39), chr(39) * 2)}' as rewritten")
            conn.execute(f'copy from database "{name}" to rewritten')
            conn.execute("detach rewritten")
            conn.close()
            os.replace(fresh, self.duckdb_path)
            Path(f"{self.duckdb_path}.wal").unlink(missing_ok=True)  # the old file's log, if any

    def raw_row_counts(self, district_id: str, tables: list[str]) -> dict[str, int]:
        """Rows per raw table for one district (0 for a table that does not exist yet)."""
        if self.kind == "duckdb" and not self.duckdb_path.exists():  # the first sync of a new installation
            return {table: 0 for table in tables}
        counts: dict[str, int] = {}
        with self.connect() as conn:  # read-write like every connection of a run: DuckDB refuses mixing modes
            cursor = conn.cursor()
            for table in tables:
                try:
                    cursor.execute(f"select count(*) from {RAW_DATASET}.{table} where district_id = {self.placeholder}",
                                   [district_id])
                    counts[table] = cursor.fetchone()[0]
                except Exception as exc:  # a table the district never loaded
                    if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
                        raise
                    if self.kind == "postgres":
                        conn.rollback()
                    counts[table] = 0
        return counts


class Session:
    """An open warehouse connection; each `transaction()` on it commits or rolls back as a whole."""

    def __init__(self, conn, kind: str) -> None:
        self.conn = conn
        self.kind = kind

    @contextmanager
    def transaction(self) -> Iterator["Statements"]:
        if self.kind == "duckdb":
            self.conn.execute("begin transaction")
            statements = Statements(self.conn, self.kind)
        else:
            statements = Statements(self.conn.cursor(), self.kind)
        try:
            yield statements
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()


class Statements:
    """Executes SQL with named parameters on DuckDB (`$name`) or Postgres (`%(name)s`) alike."""

    def __init__(self, cursor, dialect: str) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def execute(self, sql: str, parameters: dict | list | None = None) -> "Statements":
        """Named parameters (a dict) or positional ones (a list, with `placeholder` markers)."""
        parameters = bound_parameters(self.dialect, sql, parameters or {})
        self.cursor.execute(sql, parameters or None)
        return self

    def fetchone(self):
        return self.cursor.fetchone()

    def fetchall(self):
        return self.cursor.fetchall()

    @property
    def columns(self) -> list[str]:
        return [d[0] for d in self.cursor.description]


def add_missing_columns(sql: Statements, source: tuple[str, str], target: tuple[str, str]) -> list[str]:
    """Add to `target` (schema, table) the columns of `source` it lacks, with their types; returns them."""
    have = table_columns(sql, *target)
    missing = [c for c in table_columns(sql, *source) if c not in have]
    for column in missing:
        kind = sql.execute("select data_type from information_schema.columns where table_schema = "
                           f"{placeholder(sql.dialect, 's')} and table_name = {placeholder(sql.dialect, 't')} "
                           f"and column_name = {placeholder(sql.dialect, 'c')}",
                           {"s": source[0], "t": source[1], "c": column}).fetchone()[0]
        sql.execute(f"alter table {target[0]}.{target[1]} add column {column} {kind}")
    return missing


def table_columns(sql: Statements, schema: str, table: str) -> list[str]:
    """Column names of a table in order ([] when it does not exist)."""
    sql.execute(
        "select column_name from information_schema.columns where table_schema = "
        f"{placeholder(sql.dialect, 'schema')} and table_name = {placeholder(sql.dialect, 'table')} "
        "order by ordinal_position", {"schema": schema, "table": table})
    return [row[0] for row in sql.fetchall()]

