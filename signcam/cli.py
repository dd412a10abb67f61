"""``signcam``: the app with no arguments; ``classify``, ``detect``, ``bench`` and ``app`` commands.

Each command lives in its own module under :mod:`signcam.commands` with
``add_arguments(parser)`` and ``main(args) -> int``. Building the parser imports every
command module, so each keeps its heavy imports (Qt, ONNX Runtime) inside the functions
that need them: ``signcam classify`` never loads Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import re
import signal
import sys
import textwrap
from collections.abc import Iterable
from types import ModuleType

from signcam import __version__
from signcam.errors import SignCamError, Terminated

__all__ = ["main", "get_args_parser", "HelpFormatter", "DocstringHelpFormatter", "add_commands", "add_engine_arguments",
           "run_command", "positive_int", "non_negative_int", "positive_float", "non_negative_float", "probability",
           "read_zoom", "random_seed", "thread_count", "number", "plain_text", "silence_stdout"]

COMMANDS = {
    "app": "open the desktop app (the default)",
    "classify": "classify sign crops (image files, folders, globs)",
    "detect": "find, classify and track signs in a video, camera, stream or images",
    "bench": "time the classifier and each stage of the pipeline",
}


class DocstringHelpFormatter(argparse.HelpFormatter):
    """Shows a docstring as the description the way a terminal shows text: markup gone,
    paragraphs kept, examples as written (the benchmarks' scripts use it as it is)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(_fill_paragraph(paragraph, width, indent)
                           for paragraph in re.split(r"\n\s*\n", plain_text(text).strip()))


class HelpFormatter(DocstringHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The commands' formatter: a docstring as :class:`DocstringHelpFormatter` shows it, and each
    option's default, except the empty ones ("default: None" tells a user nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # By identity: a default of 0 (== False) is worth showing.
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def plain_text(docstring: str) -> str:
    """A docstring as plain text: reStructuredText roles (``:func:`` and the like) and inline
    literals lose their markup, leaving the names they mark."""
    return re.sub(r"``(.+?)``", r"\1", re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", textwrap.dedent(docstring)), flags=re.S)


def _fill_paragraph(paragraph: str, width: int, indent: str) -> str:
    """Prose filled to ``width``; each "- " item filled on its own, its later lines under its text;
    lines indented four spaces or more (an example's commands and output) kept as they are."""
    blocks: list[tuple[str, list[str]]] = []  # ("prose" | "item" | "as is", lines)
    for line in paragraph.splitlines():
        if line.startswith("    "):
            kind = "as is"
        elif line.startswith(("- ", "* ")):
            blocks.append(("item", [line]))
            continue
        elif line.startswith(" ") and blocks and blocks[-1][0] == "item":
            kind = "item"  # the item's next line
        else:
            kind = "prose"
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(line.strip() if kind != "as is" else line)
        else:
            blocks.append((kind, [line]))

    def fill(kind: str, lines: list[str]) -> str:
        if kind == "as is":
            return "\n".join(indent + line for line in lines)
        return textwrap.fill(" ".join(lines), width, initial_indent=indent, break_on_hyphens=False,
                             subsequent_indent=indent + ("  " if kind == "item" else ""))

    return "\n".join(fill(kind, lines) for kind, lines in blocks)


def number(text: str, kind: type) -> int | float:
    """For argparse types: ``text`` as an int or a float, or a usage error that says so (argparse's own
    names the type function)."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'a whole number' if kind is int else 'a number'}: {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    value = number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    value = number(text, float)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of at least 0."""
    value = number(text, float)
    if not 0.0 <= value < math.inf:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {value}")
    return value


def _between(text: str, kind: type, low: float, high: float) -> int | float:
    """``text`` as ``kind``, from ``low`` to ``high`` (nan is neither), or a usage error that says so."""
    value = number(text, kind)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
    return value


def random_seed(text: str) -> int:
    """An argparse type: a random seed, 0 to 2**32 - 1 (what numpy and torch take)."""
    return _between(text, int, 0, 2**32 - 1)


def thread_count(text: str) -> int:
    """An argparse type: CPU threads, 0 (the library's default) to 1024."""
    return _between(text, int, 0, 1024)


def read_zoom(text: str) -> float:
    """An argparse type: how much closer a crop is read, 0.5 to 2 (see ``signcam.classifier.zoom_patches``)."""
    return _between(text, float, 0.5, 2)


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    return _between(text, float, 0, 1)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--detector``, ``--coarse-detector`` and ``--scan-every``, the engine options
    that ``detect``, ``bench`` and ``app`` share."""
    from signcam.pipeline import DEFAULT_SCAN_EVERY  # not on import: training and benchmarks use this module too

    parser.add_argument("--model", metavar="PATH", help="ONNX classifier (default: the shipped assets/signnet.onnx)")
    parser.add_argument("--detector", metavar="PATH",
                        help="ONNX sign finder written by signcam-train fit-detector (default: the shipped "
                             "assets/signdet.onnx)")
    parser.add_argument("--coarse-detector", metavar="PATH",
                        help="ONNX finder for the coarser scales, which finds signs close up (default: the shipped "
                             "assets/signdet-coarse.onnx; 'none': --detector at every scale)")
    parser.add_argument("--scan-every", type=positive_int, default=DEFAULT_SCAN_EVERY, metavar="N",
                        help="search the whole frame every Nth frame of the source and in between only around the "
                             "signs being tracked (faster; a new sign shows up to N-1 frames later); 1: every frame")


def add_commands(sub: argparse._SubParsersAction, commands: Iterable[tuple[str, ModuleType, str]]) -> None:
    """One subcommand per ``(name, module, help)``; the module gives ``add_arguments`` and ``main``."""
    for name, module, help_text in commands:
        command = sub.add_parser(name, help=help_text, description=module.__doc__, formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(func=module.main)


def silence_stdout() -> None:
    """Point standard output at the null device: Python flushes it again at exit, which would fail once more."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_command(prog: str, args: argparse.Namespace, errors: tuple[type[BaseException], ...]) -> int:
    """Run the chosen command; the expected ``errors`` become one line on stderr (exit 2)."""
    try:
        return args.func(args)
    except BrokenPipeError:
        silence_stdout()  # the reader went away (`| head`): stop as if done
        return 0
    except errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # such as standard output on a full disk
        print(f"{prog}: error: {exc.strerror or exc}", file=sys.stderr)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            silence_stdout()
        return 2
    except KeyboardInterrupt as exc:
        return _stopped(prog, exc)


def _stopped(prog: str, exc: KeyboardInterrupt) -> int:
    """Say a run was stopped by Ctrl-C or SIGTERM; the exit status is 128 + the signal, as a shell reports it."""
    terminated = isinstance(exc, Terminated)
    print(f"{prog}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signcam", description="Real-time road-sign recognition.")
    parser.add_argument("--version", action="version", version=f"signcam {__version__}")
    add_commands(parser.add_subparsers(dest="command"),
                 [(name, importlib.import_module(f"signcam.commands.{name}"), text) for name, text in COMMANDS.items()])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = get_args_parser()  # imports every command: Ctrl-C can come in the first moments
    except KeyboardInterrupt as exc:
        return _stopped("signcam", exc)
    # `signcam` alone, or with only the app's options (`signcam --source x`), opens the app.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["app", *argv]
    return run_command("signcam", parser.parse_args(argv), (SignCamError,))


if __name__ == "__main__":
    sys.exit(main())
