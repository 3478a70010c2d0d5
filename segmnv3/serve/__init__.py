"""Serving: an HTTP API and a web page that segment images (FastAPI + uvicorn, the
``segmnv3[serve]`` extra; ``app.py`` imports them, this module does not)."""

from dataclasses import dataclass


@dataclass
class Limits:
    workers: int = 1  # inference threads (a 2-core CPU is busy with one)
    queue: int = 8  # requests waiting for a worker beyond those running
    max_bytes: int = 20 * 2**20  # request body
    max_pixels: int = 40_000_000  # declared width × height, checked before decoding
    max_input_pixels: int = 16_000_000  # what the network runs, after the model's resize
    read_timeout: float = 30.0  # seconds to receive a request's headers, and its body
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")  # Host header; "*": any
