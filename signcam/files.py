"""Files written whole or not at all: a reader, or ``--resume``, never finds half of one.

Example:
    >>> with written_whole("signs.csv") as partial:  # doctest: +SKIP
    ...     partial.write_text(text)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["written_whole"]


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
