"""Processes take turns on the DuckDB warehouse file instead of failing on DuckDB's lock.

Two nightly batches run in parallel (one per core) against one DuckDB file; DuckDB itself
refuses a second process at once ("Could not set lock on file").
"""

import subprocess
import sys
import time
from pathlib import Path

from roster_pipeline.warehouse.connection import Warehouse

HOLDER = """
import sys, time
from pathlib import Path
from roster_pipeline.warehouse.connection import Warehouse

wh = Warehouse("duckdb:///" + sys.argv[1], Path(sys.argv[2]))
with wh.transaction() as sql:
    sql.execute("insert into turns values ('holder', 'start', $ts)", {"ts": time.time()})
    print("holding", flush=True)
    time.sleep(1.5)
    sql.execute("insert into turns values ('holder', 'end', $ts)", {"ts": time.time()})
"""


def test_a_second_process_waits_for_its_turn_then_writes(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(f"duckdb:///{path}", tmp_path / "dlt")
    with warehouse.transaction() as sql:
        sql.execute("create table turns (who varchar, what varchar, ts double)")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(tmp_path / "dlt")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        with warehouse.transaction() as sql:  # DuckDB alone would raise here: the holder has the file open
            sql.execute("insert into turns values ('waiter', 'write', $ts)", {"ts": time.time()})
        assert holder.wait(timeout=60) == 0, holder.stderr.read()
    finally:
        holder.kill()
    with warehouse.connect(read_only=True) as conn:
        at = {(who, what): t for who, what, t in conn.execute("select * from turns").fetchall()}
    assert at[("holder", "start")] < at[("holder", "end")] <= at[("waiter", "write")]


def test_nested_connections_in_one_process_share_the_turn(tmp_path):
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", tmp_path / "dlt")
    with warehouse.connect() as outer, warehouse.connect() as inner:  # e.g. a report inside a session
        outer.execute("create table t as select 1 as x")
        outer.commit()
        assert inner.execute("select x from t").fetchall() == [(1,)]
