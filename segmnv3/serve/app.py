"""The HTTP API and its web page, on FastAPI.

``POST /v1/segment`` takes image bytes (the raw body, or a multipart form's file) and returns
the class ids as a PNG (``format=png``; uint8, 16-bit past 255 classes), the classes present
with their pixel fractions and a COCO RLE each (``format=json``), or the overlay picture
(``format=overlay``). ``GET /v1/model`` describes the model, ``GET /healthz`` answers when
the server is up, ``GET /`` is a page to try it with (no asset from elsewhere).

Under load it degrades, never dies: inference runs on a bounded pool of worker threads, and a
request that finds the pool and its queue full gets 503 with Retry-After at once. A body over
the size limit gets 413; an image whose declared size exceeds the pixel limit, or whose
network input (after the model's resize) would, is refused (413) before it is decoded;
anything that is not an image gets 400 naming the problem. A slot is taken before the body is
read, so memory grows with the queue, not with the connections; a body not received within
the read timeout gets 408, and a client that hangs up is one log line. Requests whose Host
header is not an allowed name get 400 (a page that rebinds its DNS to 127.0.0.1 cannot read
the API); the OpenAPI schema is at ``/openapi.json``, with no documentation page that would
load scripts from another site.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from io import BytesIO

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from pycocotools import mask as mask_utils
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from ..inference import Segmenter
from ..io import check_complete, decode_image, encode_png
from . import Limits, oip

FORMATS = ("png", "json", "overlay")
log = logging.getLogger(__name__)
# PIL warns (once per process, from any thread) about images past its own pixel ceiling;
# the declared size is checked against segmnv3's limit instead, so the warning is noise.
# Set once here: warnings.catch_warnings() per request is not thread-safe.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class Rejected(Exception):
    """A request answered with an error status and one line saying why."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(segmenter: Segmenter, limits: Limits | None = None,
               model_name: str = "segmnv3") -> FastAPI:  # fmt: skip
    """The application serving ``segmenter`` (as ``model_name`` on the ``/v2`` routes)."""
    limits = limits or Limits()
    pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="segmnv3-infer")
    slots = threading.BoundedSemaphore(limits.workers + limits.queue)
    app = FastAPI(title="segmnv3", description=__doc__.splitlines()[0], docs_url=None,
                  redoc_url=None)  # fmt: skip
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=_host_patterns(limits.allowed_hosts))
    app.state.segmenter, app.state.limits = segmenter, limits
    page = resources.files(__package__).joinpath("page.html").read_text()

    @app.exception_handler(Rejected)
    async def rejected(request: Request, exc: Rejected) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict:
        return describe(segmenter, limits)

    async def limited(request: Request, work):
        """``work(body)`` on the worker pool; the slot first: a request that would wait
        beyond the queue is refused unread."""
        if not slots.acquire(blocking=False):
            raise Rejected(503, "busy: every worker and queue slot is taken; retry shortly",
                           {"Retry-After": "1", "Connection": "close"})  # fmt: skip
        try:
            data = await _read_in_time(request, limits)
            return await asyncio.get_running_loop().run_in_executor(pool, work, data)
        finally:
            slots.release()

    @app.post("/v1/segment")
    async def segment(request: Request, format: str = "png", overlay: bool = False):
        if format not in FORMATS:
            raise Rejected(400, f"format {format!r}; choose one of {', '.join(FORMATS)}")
        return await limited(request, lambda data: respond(segmenter, data, format, overlay,
                                                           limits))  # fmt: skip

    add_oip_routes(app, segmenter, limits, model_name, limited)
    return app


def add_oip_routes(app: FastAPI, segmenter: Segmenter, limits: Limits, name: str, limited):
    """The Open Inference Protocol v2 routes (:mod:`segmnv3.serve.oip`)."""

    def known(model: str) -> None:
        if model != name:
            raise Rejected(404, f"no model {model!r} here; this server serves {name!r}")

    @app.get("/v2")
    async def v2_server() -> dict:
        return oip.server_metadata()

    @app.get("/v2/health/live")
    @app.get("/v2/health/ready")
    async def v2_health() -> Response:
        return Response(status_code=200)

    @app.get("/v2/models/{model}")
    async def v2_model(model: str) -> dict:
        known(model)
        return oip.model_metadata(name, segmenter.num_classes)

    @app.get("/v2/models/{model}/ready")
    async def v2_model_ready(model: str) -> Response:
        known(model)
        return Response(status_code=200)

    @app.post("/v2/models/{model}/infer")
    async def v2_infer(model: str, request: Request):
        known(model)
        header_length = request.headers.get(oip.HEADER_LENGTH)
        return await limited(request, lambda data: infer_v2(segmenter, limits, name, data,
                                                            header_length))  # fmt: skip


def infer_v2(segmenter: Segmenter, limits: Limits, name: str, body: bytes, header_length):
    """One ``/v2`` inference (runs on a worker thread)."""
    try:
        header, binary = oip.split_body(body, header_length)
        kind, value = oip.parse_input(header, binary, limits.max_pixels)
    except oip.OipError as exc:
        raise Rejected(exc.status, str(exc)) from None
    if kind == "encoded":
        value = decode_upload(value, limits.max_pixels, segmenter.preprocessing.input_size,
                              limits.max_input_pixels)  # fmt: skip
    else:
        h, w = segmenter.preprocessing.input_size(*value.shape[:2])
        if h * w > limits.max_input_pixels:
            raise Rejected(413, f"a {value.shape[1]}×{value.shape[0]} image becomes a {w}×{h} "
                                f"network input, over the limit of {limits.max_input_pixels} "
                                "pixels")  # fmt: skip
    return oip.infer_response(name, header, segmenter.predict(value))


def describe(segmenter: Segmenter, limits: Limits) -> dict:
    return {
        "classes": segmenter.classes,
        "palette": [list(c) for c in segmenter.palette],
        "backend": segmenter.backend_name,
        "precision": segmenter.precision,
        "device": str(segmenter.backend.device),
        "preprocessing": {
            "resize_shorter_side": segmenter.resize,
            "mean": segmenter.mean,
            "std": segmenter.std,
        },  # fmt: skip
        "limits": {
            "max_bytes": limits.max_bytes,
            "max_pixels": limits.max_pixels,
            "max_input_pixels": limits.max_input_pixels,
            "workers": limits.workers,
            "queue": limits.queue,
            "read_timeout": limits.read_timeout,
        },  # fmt: skip
        "formats": list(FORMATS),
    }


def _host_patterns(hosts) -> list[str]:
    """Starlette's host patterns for the allowed names (IPv6 literals with and without [])."""
    out = []
    for host in hosts:
        out += [host, f"[{host}]"] if ":" in host and not host.startswith("[") else [host]
    return out


async def _read_in_time(request: Request, limits: Limits) -> bytes:
    try:
        return await asyncio.wait_for(read_upload(request, limits.max_bytes), limits.read_timeout)
    except TimeoutError:
        raise Rejected(408, f"the body was not received within {limits.read_timeout:g} s",
                       {"Connection": "close"}) from None  # fmt: skip
    except ClientDisconnect:
        client = request.client.host if request.client else "a client"
        log.info("%s hung up during its upload", client)
        raise Rejected(400, "the client hung up during the upload") from None


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The image bytes of a raw body or of a multipart form's first file, size-limited
    while it streams in (a declared Content-Length over the limit is refused unread)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise Rejected(413, f"body of {int(declared)} bytes exceeds the limit of {max_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise Rejected(413, f"body exceeds the limit of {max_bytes} bytes")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _multipart(request, bytes(body))
    if not body:
        raise Rejected(400, "empty body: send the image bytes, or a multipart form with a file")
    return bytes(body)


async def _multipart(request: Request, body: bytes) -> bytes:
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    for value in form.values():
        if hasattr(value, "read"):
            return await value.read()
    raise Rejected(400, "multipart form without a file field")


def decode_upload(data: bytes, max_pixels: int, input_size=None, max_input: int = 0):
    """RGB pixels of an uploaded image (EXIF orientation applied, like a path), its size
    checked against ``max_pixels`` from the header before any pixel is decoded, and the
    network input it would make (``input_size(h, w)``, the model's resize) against
    ``max_input`` pixels."""
    try:
        with Image.open(BytesIO(data)) as probe:  # reads the header only
            width, height = probe.size
    except Image.DecompressionBombError:  # PIL's own ceiling, far above ours
        raise Rejected(413, f"image exceeds the limit of {max_pixels} pixels (it declares "
                            f"over {2 * Image.MAX_IMAGE_PIXELS})") from None  # fmt: skip
    except Exception:
        raise Rejected(400, "not an image (no known image format in the body)") from None
    if width * height > max_pixels:
        raise Rejected(413, f"image of {width}×{height} pixels exceeds the limit of "
                            f"{max_pixels} pixels")  # fmt: skip
    if input_size is not None and max_input:
        h, w = input_size(height, width)
        if h * w > max_input:
            raise Rejected(413, f"image of {width}×{height} pixels becomes a {w}×{h} network "
                                f"input (the model resizes its shorter side), over the limit "
                                f"of {max_input} pixels")  # fmt: skip
    try:
        return decode_image(check_complete(np.frombuffer(data, np.uint8), "upload"), "upload")
    except ValueError as exc:
        raise Rejected(400, str(exc)) from None


def respond(segmenter: Segmenter, data: bytes, format: str, overlay: bool, limits: Limits):
    """Decode, segment and encode one request (runs on a worker thread)."""
    image = decode_upload(data, limits.max_pixels, segmenter.preprocessing.input_size,
                          limits.max_input_pixels)  # fmt: skip
    mask = segmenter.predict(image)
    if format == "png":
        ids = mask if mask.dtype == np.uint8 else mask.astype(np.uint16)
        return Response(encode_png(ids), media_type="image/png")
    picture = segmenter.overlay(image, mask)
    if format == "overlay":
        return Response(encode_png(picture), media_type="image/png")
    body = summary(mask, segmenter.classes)
    if overlay:
        png = encode_png(picture)
        body["overlay_png_base64"] = base64.b64encode(png).decode()
    return JSONResponse(body)


def summary(mask: np.ndarray, classes: list[str]) -> dict:
    """The classes present, most pixels first: id, name, pixel fraction, COCO RLE."""
    counts = np.bincount(mask.ravel(), minlength=len(classes))
    found = []
    for i in np.argsort(-counts, kind="stable"):
        if counts[i] == 0 or i >= len(classes):
            continue
        rle = mask_utils.encode(np.asfortranarray(mask == i, dtype=np.uint8))
        rle = {"size": list(rle["size"]), "counts": rle["counts"].decode()}
        found.append({"id": int(i), "name": classes[i],
                      "fraction": round(float(counts[i]) / mask.size, 6), "rle": rle})  # fmt: skip
    return {"height": int(mask.shape[0]), "width": int(mask.shape[1]), "classes": found}
