"""``signcam``: the app with no arguments; ``classify``, ``detect``, ``bench`` and ``app`` commands.

Each command lives in its own module under :mod:`signcam.commands` with
``add_arguments(parser)`` and ``main(args) -> int``; they are imported only when run,
so ``signcam classify`` never loads Qt.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from signcam import __version__
from signcam.errors import SignCamError

__all__ = ["main", "get_args_parser", "HelpFormatter"]

COMMANDS = {
    "app": "open the desktop app (the default)",
    "classify": "classify sign crops (image files, folders, globs)",
    "detect": "find, classify and track signs in a video, camera, stream or images",
    "bench": "time the classifier and each stage of the pipeline",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones ("default: None" tells a user nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signcam", description="Real-time road-sign recognition.")
    parser.add_argument("--version", action="version", version=f"signcam {__version__}")
    sub = parser.add_subparsers(dest="command")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"signcam.commands.{name}")
        command = sub.add_parser(name, help=help_text, description=module.__doc__,
                                 formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = get_args_parser()
    # `signcam` alone, or with only the app's options (`signcam --source x`), opens the app.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["app", *argv]
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SignCamError as exc:
        print(f"signcam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("signcam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
