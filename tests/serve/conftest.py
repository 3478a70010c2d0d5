import socket
import threading
import time

import pytest
import uvicorn
from helpers import make_checkpoint

from segmnv3 import Segmenter
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE
from segmnv3.serve.app import create_app
from segmnv3.serve.protocol import timed_protocol


@pytest.fixture(scope="package")
def seg(tmp_path_factory):
    """A small random model on the torch backend (the same on every machine)."""
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp_path_factory.mktemp("m") / "m.pt", config, CLASSES, PALETTE)
    return Segmenter.from_checkpoint(ckpt, backend="torch", precision="fp32")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a thread, stopped on exit."""

    def __init__(self, segmenter, limits=None, header_timeout: float = 30.0,
                 model_name: str = "segmnv3") -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(segmenter, limits, model_name)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                log_level="error", http=timed_protocol(header_timeout))  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the test server did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server():
    return LiveServer
