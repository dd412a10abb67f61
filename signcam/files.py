"""Output files: checked before a run starts, and written whole or not at all.

A run refuses at once what it could only fail at later (a folder that cannot be written, an
output that would overwrite an input or another output), and a reader, or ``--resume``,
never finds half of a file.

Example:
    >>> check_writable("out/signs.csv", create_folder=True)  # doctest: +SKIP
    >>> with written_whole("out/signs.csv") as partial:  # doctest: +SKIP
    ...     partial.write_text(text)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from signcam.errors import SignCamError

__all__ = ["written_whole", "write_text_whole", "check_writable", "make_folder", "output_folder",
           "refuse_overwriting", "refuse_shared_outputs"]


@contextlib.contextmanager
def written_whole(path: str | os.PathLike) -> Iterator[Path]:
    """A name beside ``path`` to write to, renamed to ``path`` when the block ends.

    If the block fails (a full disk, Ctrl-C), the partial file is removed and an earlier
    ``path`` stays as it was. The partial name keeps the suffix, which some writers read.
    """
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def write_text_whole(path: str | os.PathLike, text: str) -> None:
    """Save ``text`` as UTF-8 with :func:`written_whole`: a reader, or a user looking at the old file, never sees half.

    Raises:
        SignCamError: the file cannot be written (no such folder, a full disk).
    """
    try:
        with written_whole(path) as partial:
            # A file name that is not UTF-8 (its bytes kept as surrogates) goes back out as those bytes.
            partial.write_text(text, encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        raise SignCamError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_writable(path: str | os.PathLike, create_folder: bool = False) -> Path:
    """``path``, if a file can be written there later: its folder exists and may be written in, and
    it is not a folder.

    Args:
        path: The file to be written.
        create_folder: Create its folder (and the folders above) if missing, rather than refuse.

    Raises:
        SignCamError: no such folder (or it cannot be made), no permission, or ``path`` is a folder.
    """
    path = Path(path)
    if create_folder:
        make_folder(path.parent)
    if not path.parent.is_dir():
        raise SignCamError(f"cannot write {path}: its folder does not exist")
    if path.is_dir():
        raise SignCamError(f"cannot write {path}: it is a folder")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SignCamError(f"cannot write {path}: permission denied")
    return path


def make_folder(folder: str | os.PathLike) -> Path:
    """``folder``, created with its parents if missing.

    Raises:
        SignCamError: it cannot be created.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SignCamError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
    return folder


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """``folder``, made (with its parents) for what the block writes into it, and removed again
    if the block leaves it empty: a run refused or stopped before writing leaves no trace.

    Raises:
        SignCamError: it cannot be created.
    """
    folder = Path(folder)
    made = not folder.exists()
    make_folder(folder)
    try:
        yield folder
    finally:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def refuse_overwriting(flag: str, target: str | os.PathLike, inputs: Iterable[Path], folder: bool = False) -> None:
    """Stop before an output named by ``flag`` overwrites one of the ``inputs``.

    Args:
        flag: How the user named the output (``--json``), for the message.
        target: The output file, or with ``folder`` the folder annotated images go into
            (refused when it holds an input: they would be written over or among them).
        inputs: The files being read.

    Raises:
        SignCamError: the output is one of the inputs, or the folder of one.
    """
    out = Path(target).expanduser().resolve()
    for path in inputs:
        path = path.expanduser().resolve()
        if _same_file(out, path) or (folder and _same_file(out, path.parent)):
            raise SignCamError(f"{flag} {target} would overwrite the input {path}: write somewhere else")


def refuse_shared_outputs(outputs: dict[str, str | os.PathLike | None]) -> None:
    """Stop before two outputs (``{flag: path}``, unset ones ``None`` or ``"-"``) write the same file.

    Raises:
        SignCamError: two of them name the same file.
    """
    named = [(flag, Path(path).expanduser().resolve()) for flag, path in outputs.items() if path not in (None, "-")]
    for i, (flag, path) in enumerate(named):
        for other, other_path in named[i + 1:]:
            if _same_file(path, other_path):
                raise SignCamError(f"{flag} and {other} name the same file {path}: give each its own")


def _same_file(a: Path, b: Path) -> bool:
    """The same path, or two names of one file (a hard link)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False
