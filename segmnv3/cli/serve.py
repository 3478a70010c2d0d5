"""Serve a model over HTTP: an API that segments images and a web page to try it.

segmnv3-serve --weights lraspp_mobilenet_v3_large.coco_with_voc_labels_v1 --port 8000
segmnv3-serve --checkpoint runs/demo/best.pt --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..serve import Limits
from .common import (
    ArgumentParser,
    add_model_source,
    add_runtime_options,
    positive_int,
    run_tool,
    segmenter_from_args,
)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="serve_seg.py", description=__doc__.splitlines()[0])
    add_model_source(p, ".pt checkpoint, torchvision .pth or exported .onnx")
    add_runtime_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=positive_int, default=Limits.workers,
                   help="inference threads")  # fmt: skip
    p.add_argument("--queue", type=int, default=Limits.queue,
                   help="requests that may wait for a worker; more get 503")  # fmt: skip
    p.add_argument("--max-bytes", type=positive_int, default=Limits.max_bytes)
    p.add_argument("--max-pixels", type=positive_int, default=Limits.max_pixels,
                   help="largest image (width × height, read from its header)")  # fmt: skip
    p.add_argument("--max-input-pixels", type=positive_int, default=Limits.max_input_pixels,
                   help="largest network input, after the model's resize")  # fmt: skip
    p.add_argument("--read-timeout", type=float, default=Limits.read_timeout,
                   help="seconds to receive a request's headers, and its body")  # fmt: skip
    p.add_argument(
        "--model-name",
        default="segmnv3",
        help="the model's name on the Open Inference Protocol routes (/v2/models/NAME)",
    )
    p.add_argument("--allowed-hosts", nargs="+", metavar="HOST",
                   help="Host header values served (default: localhost names, and --host "
                   "when it is another address; '*' serves any)")  # fmt: skip
    return p


def allowed_hosts(host: str, extra: Sequence[str] | None) -> tuple[str, ...]:
    """The Host names a server bound to ``host`` answers: the loopback names, ``host``
    itself, and ``extra``. Bound to every address (0.0.0.0, ::), any name unless ``extra``
    says which."""
    if extra:
        return tuple(extra)
    if host in ("0.0.0.0", "::", ""):
        return ("*",)
    return tuple(dict.fromkeys([*Limits.allowed_hosts, host]))


def run(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise ValueError(f"serving needs FastAPI and uvicorn ({exc}): pip install "
                         "'segmnv3[serve]'") from None  # fmt: skip
    from ..serve.protocol import timed_protocol

    if args.queue < 0 or not 0 < args.port < 65536 or not args.read_timeout > 0:
        raise ValueError(f"--queue {args.queue} / --port {args.port} / --read-timeout "
                         f"{args.read_timeout}: out of range")  # fmt: skip
    seg = segmenter_from_args(args)
    limits = Limits(args.workers, args.queue, args.max_bytes, args.max_pixels,
                    args.max_input_pixels, args.read_timeout,
                    allowed_hosts(args.host, args.allowed_hosts))  # fmt: skip
    print(f"serving {seg.describe()} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    app = create_app(seg, limits, args.model_name)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                http=timed_protocol(args.read_timeout))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)


if __name__ == "__main__":  # python -m segmnv3.cli.serve (what the load benchmark starts)
    raise SystemExit(main())
