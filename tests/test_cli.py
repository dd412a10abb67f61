"""The two entry points' --help: each command's docstring shown as a terminal shows text."""

from __future__ import annotations

import argparse

import pytest

from signcam.cli import HelpFormatter, plain_text
from signcam.cli import get_args_parser as signcam_parser
from signcam.cli import main as signcam_main
from training.cli import get_args_parser as train_parser


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """The names of a parser's subcommands."""
    return [name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices]


def _help(capsys: pytest.CaptureFixture[str], prog: str, command: str) -> str:
    if prog == "signcam":
        main = signcam_main
    else:
        from training.cli import main
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("prog", "command"), [("signcam", name) for name in _commands(signcam_parser())]
                         + [("signcam-train", name) for name in ["", *_commands(train_parser())]])
def test_help_shows_no_docstring_markup(capsys: pytest.CaptureFixture[str], prog: str, command: str) -> None:
    text = _help(capsys, prog, command)
    for markup in ("``", ":func:", ":mod:", ":class:"):
        assert markup not in text, (prog, command, markup)


def test_an_example_keeps_its_lines_and_prose_its_paragraphs(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _help(capsys, "signcam", "classify").splitlines()
    command = lines.index("    $ signcam classify crops/ --json - --top 2")
    assert lines[command - 1] == "Example:"
    assert lines[command + 1].startswith('    {"source": "crops/stop.png", "class_id": 14')
    assert lines[command - 2] == ""  # the paragraph before it ends there, not run into it


def test_paragraphs_are_filled_one_by_one() -> None:
    doc = ("``tool``: the first paragraph, long enough to be wrapped over two lines of the terminal.\n"
           "\n"
           "A second one names :func:`load_data`\n"
           "over two short lines.\n"
           "\n"
           "A list:\n"
           "- ``one``: an item long enough to be wrapped, its second\n"
           "  line under its text;\n"
           "- two.\n"
           "\n"
           "Example:\n"
           "    $ tool --flag\n"
           "      a line of output that is longer than the width and must not be wrapped at all\n")
    text = HelpFormatter("tool", width=50)._fill_text(doc, 48, "")
    assert text.split("\n\n") == [
        "tool: the first paragraph, long enough to be\nwrapped over two lines of the terminal.",
        "A second one names load_data over two short\nlines.",
        "A list:\n- one: an item long enough to be wrapped, its\n  second line under its text;\n- two.",
        "Example:\n    $ tool --flag\n"
        "      a line of output that is longer than the width and must not be wrapped at all",
    ]


def test_plain_text_leaves_single_backquotes_and_emphasis() -> None:
    assert plain_text("a `name`, *and* ``--x`` and\n``{a,\nb}``") == "a `name`, *and* --x and\n{a,\nb}"


def test_the_formatter_still_shows_defaults() -> None:
    parser = argparse.ArgumentParser(prog="tool", formatter_class=HelpFormatter)
    parser.add_argument("--n", type=int, default=3, help="how many")
    parser.add_argument("--path", help="where")
    text = parser.format_help()
    assert "how many (default: 3)" in text and "where\n" in text
