"""Print a fingerprint of every table of schema `roster`: its rows and a hash of its sorted contents.

Compares two installations (before and after a change to the pipeline) without writing any
roster value to disk: only table names, row counts and SHA-256 digests are printed. Times and run
ids differ between runs by nature, so a timestamp column is replaced by the rank of its value
among the column's values (the same publishes in the same order give the same ranks) and
`run_id` is left out.

    .venv/bin/python scripts/roster_fingerprint.py [ROSTER_WAREHOUSE url] > before.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date, datetime

from roster_pipeline.settings import data_dir, warehouse_url
from roster_pipeline.warehouse.connection import Warehouse, table_columns
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA

LEFT_OUT = {"run_id"}


def fingerprint(warehouse: Warehouse) -> dict[str, list]:
    found = {}
    with warehouse.transaction() as sql:
        tables = [r[0] for r in sql.execute(
            "select table_name from information_schema.tables where table_schema = 'roster' order by 1").fetchall()]
        for table in tables:
            columns = [c for c in table_columns(sql, PUBLISHED_SCHEMA, table) if c not in LEFT_OUT]
            rows = sql.execute(f"select {', '.join(columns)} from {PUBLISHED_SCHEMA}.{table}").fetchall()
            ranks = []
            for i in range(len(columns)):
                values = {row[i] for row in rows if isinstance(row[i], datetime)}
                ranks.append({v: n for n, v in enumerate(sorted(values))} if values else None)
            normalized = sorted(repr(tuple(
                f"t{rank[v]}" if rank and isinstance(v, datetime) else (v.isoformat() if isinstance(v, date) else v)
                for v, rank in zip(row, ranks))) for row in rows)
            digest = hashlib.sha256("\n".join(normalized).encode()).hexdigest()
            found[table] = [len(rows), digest]
    return found


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else warehouse_url()
    print(json.dumps(fingerprint(Warehouse(url, data_dir() / "dlt")), indent=1, sort_keys=True))
