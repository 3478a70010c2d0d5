"""The service under hostile and careless clients, on a real server on 127.0.0.1 (every
loop bounded in count and time)."""

import logging
import socket
import time

import cv2
import httpx
import numpy as np
from fastapi.testclient import TestClient

from segmnv3 import Segmenter
from segmnv3.serve import Limits
from segmnv3.serve.app import create_app


def _png(image):
    return cv2.imencode(".png", image)[1].tobytes()


def _open(server, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(head)
    return sock


def _post_head(length: int) -> bytes:
    return (f"POST /v1/segment HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()  # fmt: skip


def _answer(sock: socket.socket) -> bytes:
    data = b""
    deadline = time.time() + 10
    while time.time() < deadline and b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_full_queue_refuses_before_reading_the_body(seg, live_server):
    limits = Limits(workers=1, queue=0, max_bytes=20 * 2**20, read_timeout=20)
    with live_server(seg, limits) as server:
        holder = _open(server, _post_head(1000) + b"x" * 10)  # holds the only slot
        time.sleep(0.3)
        t = time.time()
        big = _open(server, _post_head(15 * 2**20))  # declares 15 MiB, sends none of it
        answer = _answer(big)
        assert answer.startswith(b"HTTP/1.1 503") and time.time() - t < 5
        holder.close()
        big.close()


def test_a_body_that_never_comes_gets_408(seg, live_server):
    with live_server(seg, Limits(read_timeout=1.0)) as server:
        sock = _open(server, _post_head(5000) + b"\x89PNG")
        t = time.time()
        answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 408") and 0.8 < time.time() - t < 6
        sock.close()


def test_headers_sent_too_slowly_close_the_connection(seg, live_server):
    with live_server(seg, header_timeout=1.0) as server:
        sock = _open(server, b"POST /v1/segment HTTP/1.1\r\nHost: loc")
        t = time.time()
        assert sock.recv(100) == b""  # closed by the server, not answered
        assert time.time() - t < 5
        sock.close()
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_a_client_hanging_up_mid_upload_is_one_quiet_line(seg, live_server, caplog):
    with caplog.at_level(logging.INFO), live_server(seg, Limits(read_timeout=10)) as server:
        for _ in range(3):
            sock = _open(server, _post_head(100_000) + b"\x89PNG" + bytes(1000))
            time.sleep(0.2)
            sock.close()
        time.sleep(0.5)
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    hung = [r for r in caplog.records if "hung up during its upload" in r.getMessage()]
    assert len(hung) == 3
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged


def test_the_network_input_is_limited_after_the_resize(seg):
    resized = Segmenter(seg.backend, seg.classes, seg.palette, resize=520)
    client = TestClient(create_app(resized, Limits(max_input_pixels=16_000_000)),
                        base_url="http://localhost")  # fmt: skip
    long_strip = np.zeros((48, 8000, 3), np.uint8)  # 0.38 MP, but 86,667×520 = 45 MP resized
    r = client.post("/v1/segment", content=_png(long_strip))
    assert r.status_code == 413 and "86667×520 network input" in r.json()["error"]
    r = client.post("/v1/segment", content=_png(np.zeros((48, 64, 3), np.uint8)))
    assert r.status_code == 200


def test_host_header_and_no_page_from_elsewhere(seg, live_server):
    with live_server(seg) as server:
        ok = httpx.get(server.url + "/healthz", timeout=10)
        assert ok.status_code == 200
        evil = httpx.get(server.url + "/v1/model", headers={"Host": "evil.example"}, timeout=10)
        assert evil.status_code == 400
        assert httpx.get(server.url + "/docs", timeout=10).status_code == 404
        assert httpx.get(server.url + "/redoc", timeout=10).status_code == 404
        assert httpx.get(server.url + "/openapi.json", timeout=10).status_code == 200


def test_allowed_hosts_follow_the_address_served():
    from segmnv3.cli.serve import allowed_hosts

    assert allowed_hosts("127.0.0.1", None) == ("localhost", "127.0.0.1", "::1")
    assert allowed_hosts("192.0.2.7", None) == ("localhost", "127.0.0.1", "::1", "192.0.2.7")
    assert allowed_hosts("0.0.0.0", None) == ("*",)
    assert allowed_hosts("0.0.0.0", ["seg.example"]) == ("seg.example",)
