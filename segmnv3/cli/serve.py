"""Serve a model over HTTP: an API that segments images and a web page to try it.

segmnv3-serve --weights lraspp_mobilenet_v3_large.coco_with_voc_labels_v1 --port 8000
segmnv3-serve --checkpoint runs/demo/best.pt --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..device import default_device
from ..inference import BACKENDS, PRECISIONS, Segmenter
from ..serve import Limits
from .common import ArgumentParser, add_model_source, positive_int, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="serve_seg.py", description=__doc__.splitlines()[0])
    add_model_source(p, ".pt checkpoint, torchvision .pth or exported .onnx")
    p.add_argument("--backend", default="auto", help=f"auto, {', '.join(BACKENDS)}")
    p.add_argument("--precision", default="auto", help=", ".join(PRECISIONS))
    p.add_argument("--threads", type=positive_int, help="runtime threads (default: all cores)")
    p.add_argument("--device", default=default_device())
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=positive_int, default=Limits.workers,
                   help="inference threads")  # fmt: skip
    p.add_argument("--queue", type=int, default=Limits.queue,
                   help="requests that may wait for a worker; more get 503")  # fmt: skip
    p.add_argument("--max-bytes", type=positive_int, default=Limits.max_bytes)
    p.add_argument("--max-pixels", type=positive_int, default=Limits.max_pixels)
    return p


def load_segmenter(args: argparse.Namespace) -> Segmenter:
    options = {"device": args.device, "backend": args.backend, "precision": args.precision,
               "num_threads": args.threads}  # fmt: skip
    if args.weights:
        return Segmenter.from_pretrained(args.weights, **options)
    return Segmenter.from_checkpoint(args.checkpoint, **options)


def run(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise ValueError(f"serving needs FastAPI and uvicorn ({exc}): pip install "
                         "'segmnv3[serve]'") from None  # fmt: skip
    if args.queue < 0 or not 0 < args.port < 65536:
        raise ValueError(f"--queue {args.queue} / --port {args.port}: out of range")
    seg = load_segmenter(args)
    limits = Limits(args.workers, args.queue, args.max_bytes, args.max_pixels)
    print(f"serving {seg.describe()} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    uvicorn.run(create_app(seg, limits), host=args.host, port=args.port, log_level="warning")


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)


if __name__ == "__main__":  # python -m segmnv3.cli.serve (what the load benchmark starts)
    raise SystemExit(main())
