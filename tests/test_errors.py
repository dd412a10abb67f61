"""Errors as users read them: one line, signcam's own as they are, anything else with its type."""

from __future__ import annotations

from signcam.errors import SourceError, first_line, user_message


def test_first_line_of_a_library_message_or_its_type() -> None:
    assert first_line(RuntimeError("Error(s) in loading state_dict:\n\tsize mismatch ...")) == \
        "Error(s) in loading state_dict:"
    assert first_line(KeyError()) == "KeyError"


def test_user_message_names_the_type_only_of_what_signcam_did_not_expect() -> None:
    assert user_message(SourceError("no camera at index 3")) == "no camera at index 3"
    assert user_message(ZeroDivisionError("division by zero\nmore")) == "ZeroDivisionError: division by zero"
    assert user_message(EOFError()) == "EOFError"
