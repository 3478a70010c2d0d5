"""What every tool shares: exit codes, one-line errors for bad input, progress on a terminal.

Exit codes: 0 done; 2 bad input or usage (one line on stderr naming the file or value, no
traceback); 1 anything unexpected (a bug: the traceback is kept).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from ..device import default_device
from ..hub import DownloadError
from ..inference import BACKENDS, PRECISIONS, Segmenter

EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT = 0, 1, 2

# What the library raises for input it cannot use: missing or unreadable files and folders
# (OSError's file errors), values it rejects (ValueError, which the config's key and type
# errors are too), and weights it cannot fetch (the message says what to do instead).
BAD_INPUT = (
    DownloadError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ValueError,
)


class SomeFailed(Exception):
    """A batch job that finished but could not do every item (they were listed): exit 1,
    this one line on stderr."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the tools' exit code for usage errors (2, one line)."""

    def error(self, message: str):
        raise SystemExit(_one_line(f"{self.prog}: {message}"))


def _one_line(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def add_model_source(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """``--checkpoint FILE`` or ``--weights NAME`` (known weights: segmnv3-weights lists
    them), exactly one of the two."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--checkpoint", help=checkpoint_help)
    group.add_argument("--weights", help="known weights by name (see segmnv3-weights)")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--precision``, ``--threads``, ``--device``: what runs the model."""
    parser.add_argument("--backend", default="auto",
                        help=f"auto (the fastest installed), {', '.join(BACKENDS)}")  # fmt: skip
    parser.add_argument("--precision", default="auto", help=", ".join(PRECISIONS))
    parser.add_argument("--threads", type=positive_int, help="runtime threads (default: all)")
    parser.add_argument("--device", default=default_device())


def segmenter_from_args(args: argparse.Namespace) -> Segmenter:
    """The Segmenter that ``add_model_source`` and ``add_runtime_options`` describe."""
    options = {"device": args.device, "backend": args.backend, "precision": args.precision,
               "num_threads": args.threads}  # fmt: skip
    if args.weights:
        return Segmenter.from_pretrained(args.weights, **options)
    return Segmenter.from_checkpoint(args.checkpoint, **options)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (the flag's name is added by argparse)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return int(text)


def show_progress(disabled: bool) -> bool:
    """Progress bars only on a terminal, and not when asked for none."""
    return not disabled and sys.stderr.isatty()


def run_tool(
    build_parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[argparse.Namespace], object],
    argv: Sequence[str] | None,
) -> int:
    """Parse ``argv``, call ``run(args)`` and map what happens to an exit code."""
    try:
        # Intermixed: dotted overrides may stand on both sides of a flag.
        args = build_parser().parse_intermixed_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed)
        return int(exc.code or 0)
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SomeFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUG
    except BAD_INPUT as exc:
        return _one_line(_message(exc))
    except Exception:
        traceback.print_exc()
        return EXIT_BUG
    return EXIT_OK


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__
