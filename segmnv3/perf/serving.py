"""HTTP serving under load: requests/s and latency percentiles at several concurrency
levels against ``serve_seg.py`` started in its own process on 127.0.0.1, and that server's
peak memory."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from .deployed import sample_scene


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def serving_load(
    checkpoint: str | Path,
    clients=(1, 4, 16),
    requests: int = 60,
    size: tuple[int, int] = (512, 1024),
    fmt: str = "png",
    threads: int | None = None,
    log=print,
) -> dict:
    """Start the server on ``checkpoint``, then per concurrency level send ``requests``
    POSTs of one sample scene (``size``) and time each; returns and logs the figures."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "segmnv3.cli.serve", "--checkpoint", str(checkpoint),
           "--port", str(port), "--queue", "32"]  # fmt: skip
    if threads:
        cmd += ["--threads", str(threads)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    body = cv2.imencode(".png", cv2.cvtColor(sample_scene(*size), cv2.COLOR_RGB2BGR))[1].tobytes()
    routes = {f"/v1 format={fmt}": (f"/v1/segment?format={fmt}", body, {}),
              "/v2 binary BYTES": _v2_request(body)}  # fmt: skip
    try:
        _wait_until_up(url, server)
        rows = []
        for n in clients:  # the two APIs in turns at each level: drift hits both alike
            for api, route in routes.items():
                rows.append({"api": api, **_level(url, route, n, requests, httpx)})
                r = rows[-1]
                log(f"serving {size[1]}×{size[0]} PNG → {api:<16}, {n:>2} concurrent clients: "
                    f"{r['requests_per_s']:.1f} requests/s, p50 {r['p50_ms']:.0f} ms, p95 "
                    f"{r['p95_ms']:.0f} ms, statuses {r['statuses']}")  # fmt: skip
        peak = _peak_mib(server.pid)
        log(f"server peak memory: {peak:.0f} MiB")
        return {"levels": rows, "server_peak_mib": round(peak, 1)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise TimeoutError(f"the server at {url} did not answer in {timeout} s")


def _v2_request(png: bytes) -> tuple[str, bytes, dict]:
    """The Open Inference Protocol request tritonclient sends by default: the image as a
    binary BYTES element after the JSON header, labels asked for in binary."""
    element = struct.pack("<I", len(png)) + png
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(element)},
                }
            ],
            "outputs": [{"name": "labels", "parameters": {"binary_data": True}}],
        }
    )
    head_bytes = head.encode()
    return ("/v2/models/segmnv3/infer", head_bytes + element,
            {"Inference-Header-Content-Length": str(len(head_bytes))})  # fmt: skip


def _level(url: str, route: tuple, clients: int, requests: int, httpx) -> dict:
    """One concurrency level: ``clients`` threads share ``requests`` POSTs of ``route``
    (path, body, headers)."""
    path, body, headers = route

    def one(_):
        with httpx.Client(timeout=120) as client:
            t = time.perf_counter()
            status = client.post(f"{url}{path}", content=body, headers=headers).status_code
            return status, time.perf_counter() - t

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    ok = [t for s, t in results if s == 200]
    statuses = {
        str(s): sum(1 for x, _ in results if x == s) for s in sorted({s for s, _ in results})
    }
    return {"clients": clients, "requests": requests, "requests_per_s": round(len(ok) / wall, 2),
            "p50_ms": round(1000 * float(np.percentile(ok, 50)), 1) if ok else None,
            "p95_ms": round(1000 * float(np.percentile(ok, 95)), 1) if ok else None,
            "statuses": statuses}  # fmt: skip
