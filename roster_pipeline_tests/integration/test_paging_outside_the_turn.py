"""A slow Clever page never holds the DuckDB warehouse (issue 27, section 3).

A full refresh pages Clever (dlt's extract and normalize) between the process's turns on the
DuckDB file and takes a turn only to load. So while Clever answers one page slowly, another
process (`status`, another district's run) opens the warehouse at once.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from roster_pipeline.cli.sync import sync
from roster_pipeline.settings import data_dir, warehouse_url
from roster_pipeline.warehouse.connection import Warehouse

SLOW_SECONDS = 10.0
# Run in another process: how long it waits for the warehouse's turn and opens the file.
TAKE_THE_TURN = """
import sys, time
from roster_pipeline.settings import data_dir, warehouse_url
from roster_pipeline.warehouse.connection import Warehouse
warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
started = time.monotonic()
with warehouse.connect() as conn:
    conn.execute("select count(*) from clever_raw.students").fetchone()
print(f"{time.monotonic() - started:.2f}")
"""


def test_another_process_uses_the_warehouse_while_clever_answers_a_page_slowly(own_sandbox, warehouse_env):
    server = own_sandbox(seed=31, students=400)
    assert sync(out=io.StringIO()) == 0  # the warehouse exists; the second sync replaces the district's slice
    # Let the events request and two collection pages through; the next page takes SLOW_SECONDS.
    server.faults.configure({"status": "slow", "delay": SLOW_SECONDS, "after": 3, "count": 1})
    syncing = subprocess.Popen([sys.executable, "-m", "roster_pipeline.cli", "sync"], env=os.environ.copy(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while server.faults.count and time.monotonic() < deadline:  # the slow page has begun
            time.sleep(0.05)
        assert server.faults.count == 0, "the sync never requested the slow page"
        slow_began = time.monotonic()
        other = subprocess.run([sys.executable, "-c", TAKE_THE_TURN], env=os.environ.copy(), capture_output=True, check=False,
                               text=True, timeout=SLOW_SECONDS * 4)
        assert other.returncode == 0, other.stderr[-2000:]
        waited = float(other.stdout.strip().splitlines()[-1])
        still_paging = syncing.poll() is None and time.monotonic() - slow_began < SLOW_SECONDS
        output, _ = syncing.communicate(timeout=120)
    finally:
        if syncing.poll() is None:
            syncing.kill()
    assert syncing.returncode == 0, output[-3000:]
    assert waited < 3.0, f"the other process waited {waited:.1f}s for the warehouse while Clever was slow"
    assert still_paging, "the slow page ended before the other process was done: the test proved nothing"
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    with warehouse.connect(read_only=True) as conn:
        assert conn.execute("select count(*) from clever_raw.students").fetchone()[0] == 400
