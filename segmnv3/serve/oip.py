"""The Open Inference Protocol v2 (KServe, Triton) beside segmnv3's ``/v1``.

``GET /v2`` (server metadata), ``/v2/health/live``, ``/v2/health/ready``,
``GET /v2/models/<name>`` (inputs and outputs: names, datatypes, shapes),
``/v2/models/<name>/ready`` and ``POST /v2/models/<name>/infer``. The input ``image`` is an
encoded image as ``BYTES`` (base64 strings in JSON, or the binary-data extension, which
``tritonclient`` sends by default) or a ``UINT8`` ``[1, H, W, 3]`` RGB tensor; the output is
``labels``, ``UINT8`` ``[1, H, W]`` (``UINT16`` past 256 classes), in JSON or binary as the
request asks. Errors are ``{"error": "..."}`` with the same limits and 503 as ``/v1``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct

import numpy as np
from fastapi.responses import JSONResponse, Response

from .. import __version__

HEADER_LENGTH = "Inference-Header-Content-Length"  # the binary-data extension's header
INPUT, OUTPUT = "image", "labels"


class OipError(ValueError):
    """A request the protocol refuses; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def server_metadata() -> dict:
    return {"name": "segmnv3", "version": __version__, "extensions": ["binary_tensor_data"]}


def model_metadata(name: str, num_classes: int) -> dict:
    dtype = "UINT8" if num_classes <= 256 else "UINT16"
    return {"name": name, "versions": ["1"], "platform": "segmnv3",
            "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [1]},
                       {"name": INPUT, "datatype": "UINT8", "shape": [1, -1, -1, 3]}],
            "outputs": [{"name": OUTPUT, "datatype": dtype, "shape": [1, -1, -1]}]}  # fmt: skip


def split_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The request's JSON header and the binary data after it (the extension's layout)."""
    size = len(body)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > size:
            raise OipError(f"{HEADER_LENGTH} {header_length!r} is not a length within the "
                           f"{size}-byte body")  # fmt: skip
        size = int(header_length)
    try:
        header = json.loads(body[:size])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OipError(f"the inference request is not JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise OipError("the inference request has no 'inputs' list")
    return header, body[size:]


def _binary_inputs(header: dict, binary: bytes) -> dict[str, bytes]:
    """Each input's raw bytes from the binary section, in order (``binary_data_size``)."""
    out, pos = {}, 0
    for tensor in header["inputs"]:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or pos + size > len(binary):
            raise OipError(f"input {tensor.get('name')!r}: binary_data_size {size!r} runs past "
                           f"the {len(binary)} bytes of binary data")  # fmt: skip
        out[tensor.get("name")], pos = binary[pos : pos + size], pos + size
    return out


def _bytes_elements(raw: bytes) -> list[bytes]:
    """A BYTES tensor in binary: each element a 4-byte little-endian length, then its bytes."""
    items, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise OipError("a BYTES element's length is cut off")
        (n,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + n > len(raw):
            raise OipError("a BYTES element runs past the binary data")
        items.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return items


def parse_input(header: dict, binary: bytes, max_pixels: int) -> tuple[str, object]:
    """``("encoded", bytes)`` or ``("rgb", H×W×3 uint8)`` from the request's ``image``."""
    tensors = [t for t in header["inputs"] if isinstance(t, dict) and t.get("name") == INPUT]
    if len(header["inputs"]) != 1 or not tensors:
        names = [t.get("name") for t in header["inputs"] if isinstance(t, dict)]
        raise OipError(f"give one input named {INPUT!r} (got {names})")
    tensor, raw = tensors[0], _binary_inputs(header, binary).get(INPUT)
    dtype, shape = tensor.get("datatype"), tensor.get("shape")
    if dtype == "BYTES":
        if raw is not None:
            items = _bytes_elements(raw)
        else:
            try:
                items = [base64.b64decode(s, validate=True) for s in tensor.get("data") or []]
            except (binascii.Error, TypeError, ValueError):
                raise OipError("BYTES data in JSON must be base64 strings of the image") from None
        if len(items) != 1:
            raise OipError(f"a BYTES {INPUT!r} holds one encoded image, got {len(items)}")
        return "encoded", items[0]
    if dtype == "UINT8":
        ok = isinstance(shape, list) and len(shape) == 4 and shape[0] == 1 and shape[3] == 3
        if not ok or not all(isinstance(v, int) and v > 0 for v in shape):
            raise OipError(f"a UINT8 {INPUT!r} is [1, H, W, 3] RGB, got shape {shape}")
        if shape[1] * shape[2] > max_pixels:
            raise OipError(f"image of {shape[2]}×{shape[1]} pixels exceeds the limit of "
                           f"{max_pixels} pixels", 413)  # fmt: skip
        values = np.frombuffer(raw, np.uint8) if raw is not None else _json_uint8(tensor)
        if values.size != shape[1] * shape[2] * 3:
            raise OipError(f"{INPUT!r} has {values.size} values for shape {shape}")
        return "rgb", values.reshape(shape[1:]).copy()
    raise OipError(f"{INPUT!r} datatype {dtype!r}; send BYTES (an encoded image) or UINT8")


def _json_uint8(tensor: dict) -> np.ndarray:
    data = np.asarray(tensor.get("data") or [], dtype=np.int64).ravel()
    if data.size and (data.min() < 0 or data.max() > 255):
        raise OipError(f"UINT8 {INPUT!r} values must be 0…255")
    return data.astype(np.uint8)


def wants_binary(header: dict) -> bool:
    """Binary output when the request's ``labels`` output or its parameters ask for it."""
    for out in header.get("outputs") or []:
        if isinstance(out, dict) and out.get("name") == OUTPUT:
            return bool((out.get("parameters") or {}).get("binary_data", False))
    return bool((header.get("parameters") or {}).get("binary_data_output", False))


def infer_response(name: str, header: dict, mask: np.ndarray) -> Response:
    dtype = "UINT8" if mask.dtype == np.uint8 else "UINT16"
    labels = mask if mask.dtype == np.uint8 else mask.astype("<u2")
    out = {"name": OUTPUT, "datatype": dtype, "shape": [1, *mask.shape]}
    body = {"model_name": name, "model_version": "1", "outputs": [out]}
    if "id" in header:
        body["id"] = header["id"]
    if not wants_binary(header):
        out["data"] = labels.ravel().tolist()
        return JSONResponse(body)
    data = labels.tobytes()
    out["parameters"] = {"binary_data_size": len(data)}
    head = json.dumps(body).encode()
    return Response(head + data, media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(head))})  # fmt: skip
