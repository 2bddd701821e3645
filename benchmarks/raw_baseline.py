"""The raw baseline: the physical-limit time to page a Clever district and land the bytes in DuckDB.

This is the benchmark's yardstick. It pages every raw collection the pipeline loads
(`roster_pipeline.clever.settings.TABLES`) with one plain `httpx.Client`, writes each page's
objects as NDJSON, and loads the files into a fresh DuckDB with `read_json` (plus the
section → student pairs) — no dlt, no Dagster, no typing, checks or models. A full
`roster-pipeline sync` cannot be faster than this, so sync time / baseline time says how much the
pipeline costs on top of moving the bytes.

    .venv/bin/python benchmarks/raw_baseline.py --base-url http://127.0.0.1:8899 --token TOKEN --work-dir /tmp/raw

`--base-url` is the API host (scheme + host[:port]); collections are read from `{base-url}/v3.1/...`
(as in `CleverClient.pages`, `next` links are joined onto it).
"""

from __future__ import annotations

import argparse
import pathlib
import time
from urllib.parse import urljoin

import duckdb
import httpx
import orjson

from roster_pipeline.clever.settings import MAX_PAGE_SIZE, TABLES


def fetch(http: httpx.Client, url: str, params: dict[str, str] | None) -> httpx.Response:
    """GET, waiting out 429s until `X-RateLimit-Reset`; any other non-200 is an error."""
    while True:
        response = http.get(url, params=params)
        if response.status_code != 429:
            return response.raise_for_status()
        reset = response.headers.get("X-RateLimit-Reset")
        time.sleep(max(float(reset) - time.time(), 0.1) if reset else 1.0)


def page_to_file(http: httpx.Client, root: str, path: str, params: dict[str, str], out: pathlib.Path) -> tuple[int, int]:
    """Page one collection into `out` as NDJSON; returns (pages, response bytes)."""
    url, query = f"{root}/v3.1/{path}", {**params, "limit": str(MAX_PAGE_SIZE)}
    pages = size = 0
    seen: set[str] = set()
    with out.open("wb") as f:
        while True:
            response = fetch(http, url, query)
            pages, size = pages + 1, size + len(response.content)
            body = orjson.loads(response.content)
            f.write(b"".join(orjson.dumps(item["data"]) + b"\n" for item in body.get("data") or []))
            # Like the project's client: an empty page with a `next` link keeps going.
            next_uri = next((link.get("uri") for link in body.get("links") or [] if link.get("rel") == "next"), None)
            if not next_uri:
                return pages, size
            if next_uri in seen:
                raise RuntimeError(f"paging {path} did not advance ({next_uri} repeated)")
            seen.add(next_uri)
            url, query = urljoin(root + "/", next_uri), None


def raw_baseline(base_url: str, token: str, work_dir: pathlib.Path) -> dict:
    """Page every raw collection into NDJSON, load it into `work_dir/baseline.duckdb`, and time it."""
    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "baseline.duckdb"
    for stale in (database, work_dir / "baseline.duckdb.wal"):
        stale.unlink(missing_ok=True)
    root = base_url.rstrip("/").removesuffix("/v3.1")  # also accept the project's CLEVER_API_BASE_URL form

    started = time.perf_counter()
    pages = size = 0
    files: dict[str, pathlib.Path] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120.0) as http:
        for table, (path, params, _columns) in TABLES.items():
            files[table] = work_dir / f"{table}.ndjson"
            table_pages, table_bytes = page_to_file(http, root, path, params, files[table])
            pages, size = pages + table_pages, size + table_bytes
    paged = time.perf_counter()

    rows: dict[str, int] = {}
    with duckdb.connect(str(database)) as con:
        for table, file in files.items():
            if file.stat().st_size == 0:
                rows[table] = 0
                continue
            source = str(file).replace("'", "''")
            con.execute(f"create table \"{table}\" as select * from read_json('{source}', format='newline_delimited')")
            rows[table] = con.execute(f'select count(*) from "{table}"').fetchone()[0]
        if rows.get("sections"):
            con.execute("create table section_students as select id as section_id, unnest(students) as student_id from sections")
            rows["section_students"] = con.execute("select count(*) from section_students").fetchone()[0]
        else:
            rows["section_students"] = 0
    loaded = time.perf_counter()

    return {"seconds": round(loaded - started, 3), "page_seconds": round(paged - started, 3),
            "load_seconds": round(loaded - paged, 3), "pages": pages, "bytes": size, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="API host, e.g. http://127.0.0.1:8899")
    parser.add_argument("--token", required=True, help="the district's bearer token")
    parser.add_argument("--work-dir", required=True, type=pathlib.Path)
    args = parser.parse_args()
    print(orjson.dumps(raw_baseline(args.base_url, args.token, args.work_dir), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
