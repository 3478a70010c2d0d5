"""List the known weights: name, task, classes, metrics, size and whether they are cached.

segmnv3-weights
segmnv3-weights --registry team-weights.json --download my_model
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from .. import hub
from .common import ArgumentParser, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="weights_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("--registry", nargs="+", default=[], help="JSON cards of extra weights")
    p.add_argument("--download", nargs="+", default=[], metavar="NAME",
                   help="fetch these into the cache now (before going offline)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    return p


def _metrics(metrics: dict) -> str:
    figures = [f"{k} {v}" for k, v in metrics.items() if k != "dataset"]
    return ", ".join(figures) + (f" ({metrics['dataset']})" if "dataset" in metrics else "")


def run(args: argparse.Namespace) -> list[dict]:
    for path in args.registry:
        hub.load_registry_file(path)
    for name in args.download:
        print(f"{name}: {hub.weights_file(name)}")
    rows = hub.list_weights()
    if args.json:
        print(json.dumps(rows, indent=2))
        return rows
    print(f"cache: {hub.cache_dir()} (offline: {hub.offline()})")
    for r in rows:
        state = "cached" if r["cached"] else "not cached"
        classes = f"{r['classes']} classes" if r["classes"] else "ImageNet backbone"
        print(f"{r['name']:<52} {r['task']:<12} {classes:<17} {r['num_params'] / 1e6:6.2f} M  "
              f"{state:<10}  {_metrics(r['metrics'])}")  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
