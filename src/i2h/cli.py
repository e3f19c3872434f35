"""The `i2h` command: thin adapters that parse arguments and call one library function each."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module here defines `register(subparsers)`, adding its commands with `set_defaults(func=...)`;
# `func(args) -> int` is the exit status.
COMMAND_MODULES = (
    "i2h.cli_model",
    "i2h.cli_train",
    "i2h.cli_eval",
    "i2h.cli_data",
    "i2h.cli_serve",
    "i2h.cli_fast",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i2h", description="Screenshot to HTML.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
