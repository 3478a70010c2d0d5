"""Benchmark segmnv3 against torchvision's eager models, side by side in one process.

python tools/bench_seg.py --json bench.json
python tools/bench_seg.py --heads lraspp --sizes 512x1024 --skip-data --skip-train
"""

import argparse

import torch

from segmnv3.bench import TABLE_HEADER, data_loading, inference_table, postprocess, train_step
from segmnv3.data.io import write_bytes_atomic


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heads", nargs="+", default=["lraspp", "deeplabv3"])
    p.add_argument("--sizes", nargs="+", type=_size, default=[(512, 1024), (1024, 2048)],
                   help="HxW (default 512x1024 1024x2048)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--skip-data", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--json", help="write all figures to this JSON file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads\n{TABLE_HEADER}")
    report = {
        "threads": args.threads,
        "inference": inference_table(
            args.heads,
            args.sizes,
            repeats=args.repeats,
            threads=args.threads,
            int8=not args.no_int8,
        ),  # fmt: skip
    }
    report["postprocess_ms"] = postprocess()
    if not args.skip_data:
        report["data_loading_samples_per_s"] = data_loading()
    if not args.skip_train:
        report["train_images_per_s"] = train_step()
    if args.json:
        import json

        write_bytes_atomic(args.json, json.dumps(report, indent=2).encode())
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
