"""The Open Inference Protocol v2 routes, driven by the protocol's published client
(tritonclient[http]) and by hand for the JSON forms."""

import base64
import json

import cv2
import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from segmnv3.data.synthetic import SyntheticSegmentation
from segmnv3.serve import Limits


@pytest.fixture(scope="module")
def scene():
    rgb = SyntheticSegmentation("val", 1, size=(72, 104)).load(0)[0]
    return rgb, cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_tritonclient_health_metadata_and_infer(seg, scene, live_server):
    rgb, png = scene
    want = seg.predict(rgb)
    with live_server(seg, model_name="roads") as server:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("roads") and not client.is_model_ready("other")
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
        meta = client.get_model_metadata("roads")
        assert meta["name"] == "roads" and meta["outputs"] == [
            {"name": "labels", "datatype": "UINT8", "shape": [1, -1, -1]}]  # fmt: skip
        assert {(i["name"], i["datatype"]) for i in meta["inputs"]} == {
            ("image", "BYTES"), ("image", "UINT8")}  # fmt: skip
        # An encoded image as BYTES, binary both ways (what tritonclient sends by default).
        image = triton.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([png], dtype=np.object_))
        result = client.infer("roads", [image], outputs=[triton.InferRequestedOutput("labels")])
        labels = result.as_numpy("labels")
        assert labels.dtype == np.uint8 and labels.shape == (1, 72, 104)
        assert (labels[0] == want).all()
        # An RGB tensor, labels asked for in JSON.
        tensor = triton.InferInput("image", [1, 72, 104, 3], "UINT8")
        tensor.set_data_from_numpy(rgb[None], binary_data=False)
        out = triton.InferRequestedOutput("labels", binary_data=False)
        result = client.infer("roads", [tensor], outputs=[out], request_id="7")
        assert (result.as_numpy("labels")[0] == want).all()
        assert result.get_response()["id"] == "7"
        with pytest.raises(InferenceServerException, match="no model 'segmnv3' here"):
            client.infer("segmnv3", [image])
        client.close()


def test_json_forms_and_errors_by_hand(seg, scene, live_server):
    rgb, png = scene
    want = seg.predict(rgb)
    limits = Limits(max_pixels=72 * 104)
    with live_server(seg, limits) as server:
        url = f"{server.url}/v2/models/segmnv3/infer"
        assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
        body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                            "data": [base64.b64encode(png).decode()]}]}  # fmt: skip
        r = httpx.post(url, json=body, timeout=60)
        out = r.json()["outputs"][0]
        assert r.status_code == 200 and out["name"] == "labels" and out["shape"] == [1, 72, 104]
        assert (np.array(out["data"], np.uint8).reshape(72, 104) == want).all()
        bad = [
            ({"inputs": [{"name": "img", "datatype": "BYTES", "shape": [1], "data": []}]}, 400,
             "give one input named 'image'"),
            ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": []}]}, 400,
             "datatype 'FP32'"),
            ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                          "data": ["not base64!"]}]}, 400, "must be base64"),
            ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 100, 100, 3],
                          "data": [0]}]}, 413, "exceeds the limit of 7488 pixels"),
            ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3],
                          "data": [1, 2]}]}, 400, "has 2 values for shape [1, 2, 2, 3]"),
        ]  # fmt: skip
        for request, status, message in bad:
            r = httpx.post(url, json=request, timeout=60)
            assert r.status_code == status and message in r.json()["error"], r.text
        r = httpx.post(url, content=b"{not json", timeout=60)
        assert r.status_code == 400 and "not JSON" in r.json()["error"]
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 99},
                    }
                ]
            }
        ).encode()
        r = httpx.post(url, content=head + b"abc", headers={"Inference-Header-Content-Length":
                       str(len(head))}, timeout=60)  # fmt: skip
        assert r.status_code == 400 and "runs past the 3 bytes" in r.json()["error"]
        assert httpx.get(f"{server.url}/v2/models/nope").status_code == 404
