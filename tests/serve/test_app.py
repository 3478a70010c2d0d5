import base64
import io

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pycocotools import mask as mask_utils

from segmnv3 import Segmenter
from segmnv3.data.synthetic import CLASSES, PALETTE, SyntheticSegmentation
from segmnv3.serve import Limits
from segmnv3.serve.app import create_app


@pytest.fixture(scope="module")
def client(seg):
    limits = Limits(max_bytes=2_000_000, max_pixels=1_000_000)
    return TestClient(create_app(seg, limits), base_url="http://localhost")


@pytest.fixture(scope="module")
def scene():
    return SyntheticSegmentation("val", 1, size=(72, 96)).load(0)[0]


def _png(rgb):
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_png_of_class_ids_raw_body_and_multipart(client, seg, scene):
    expected = seg.predict(scene)
    for kwargs in ({"content": _png(scene)}, {"files": {"file": ("s.png", _png(scene))}}):
        r = client.post("/v1/segment?format=png", **kwargs)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        ids = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint8 and np.array_equal(ids, expected)


def test_json_classes_fractions_and_rle(client, seg, scene):
    r = client.post("/v1/segment?format=json&overlay=true", content=_png(scene))
    body = r.json()
    expected = seg.predict(scene)
    assert (body["height"], body["width"]) == expected.shape
    assert sum(c["fraction"] for c in body["classes"]) == pytest.approx(1.0, abs=1e-5)
    for c in body["classes"]:
        assert c["name"] == CLASSES[c["id"]]
        rle = {"size": c["rle"]["size"], "counts": c["rle"]["counts"].encode()}
        assert np.array_equal(mask_utils.decode(rle).astype(bool), expected == c["id"])
    overlay = Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"])))
    assert overlay.size == (96, 72)


def test_overlay_model_health_and_page(client, seg, scene):
    r = client.post("/v1/segment?format=overlay", content=_png(scene))
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (96, 72)
    model = client.get("/v1/model").json()
    assert model["classes"] == CLASSES and model["palette"] == [list(c) for c in PALETTE]
    assert model["backend"] == "torch" and model["precision"] == "fp32"
    assert model["preprocessing"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert client.get("/healthz").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and "/v1/segment" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # works offline


def test_sixteen_bit_png_past_255_classes(scene):
    classes = [f"c{i}" for i in range(300)]

    class Many:  # a backend whose logits favour class 270 everywhere
        name, precision = "test", "fp32"
        device = "cpu"

        def lowres_logits(self, batch):
            import torch

            logits = torch.zeros(batch.shape[0], 300, 9, 12)
            logits[:, 270] = 1
            return logits

    seg = Segmenter(Many(), classes, [(0, 0, 0)] * 300)
    r = TestClient(create_app(seg), base_url="http://localhost").post(
        "/v1/segment", content=_png(scene)
    )
    ids = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert ids.dtype == np.uint16 and (ids == 270).all()


@pytest.mark.parametrize(
    ("body", "query", "status", "message"),
    [
        (b"", "", 400, "empty body"),
        (b"hello, not an image", "", 400, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "", 400, "not an image"),
        (None, "?format=gif", 400, "format 'gif'; choose one of png, json, overlay"),
        (bytes(2_000_001), "", 413, "exceeds the limit of 2000000"),
    ],
)
def test_errors_name_the_problem(client, scene, body, query, status, message):
    r = client.post(f"/v1/segment{query}", content=_png(scene) if body is None else body)
    assert r.status_code == status and message in r.json()["error"]


def test_truncated_upload_and_decompression_bomb(client, scene):
    data = cv2.imencode(".jpg", scene)[1].tobytes()
    r = client.post("/v1/segment", content=data[: len(data) - 100])
    assert r.status_code == 400 and "truncated JPEG" in r.json()["error"]
    # Tiny files that declare 2000×2000 and 20000×20000 pixels: refused before decoding.
    for side, message in ((2000, "2000×2000 pixels exceeds"), (20000, "exceeds the limit")):
        bomb = io.BytesIO()
        Image.new("1", (side, side)).save(bomb, format="PNG")
        assert len(bomb.getvalue()) < 200_000
        r = client.post("/v1/segment", content=bomb.getvalue())
        assert r.status_code == 413 and message in r.json()["error"]
