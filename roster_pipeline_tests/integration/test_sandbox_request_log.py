"""The sandbox's request log (benchmarks/costs.py reads a sync's first request from it): one line per
request with its arrival time and path, never a token or a query, in a file only its owner reads."""

import stat
import time

import httpx

from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox


def test_each_request_is_logged_with_its_time_and_path_only(tmp_path):
    log = tmp_path / "requests.log"
    server = start_sandbox(SandboxData(seed=3, districts=1, students=50), request_log=log)
    try:
        before = time.time()
        (spec,) = server.data.specs
        httpx.get(f"{server.base_url}/oauth/tokens", auth=(server.client_id, server.client_secret)).raise_for_status()
        httpx.get(f"{server.base_url}/v3.1/schools", params={"limit": 2},
                  headers={"Authorization": f"Bearer {spec.token}"}).raise_for_status()
        httpx.post(f"{server.base_url}/sandbox/advance-day", json={"share": 0.01}).raise_for_status()
        after = time.time()
    finally:
        server.shutdown()
        server.server_close()
    lines = [line.split(" ") for line in log.read_text().splitlines()]
    assert [path for _, path in lines] == ["/oauth/tokens", "/v3.1/schools", "/sandbox/advance-day"]
    assert all(before <= float(at) <= after for at, _ in lines)
    assert spec.token not in log.read_text() and "limit" not in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
