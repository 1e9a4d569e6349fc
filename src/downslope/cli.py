"""The `downslope` command line. Subcommands arrive with the training loop (see the issues)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="downslope",
        description="Train neural networks by gradient descent and see what the optimizer does.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"downslope {__version__}")
        return 0
    parser.print_help(sys.stdout)
    return 0
