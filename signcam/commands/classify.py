"""Classify sign crops: each image, whatever its size, is one sign resized to the model's input.

Crops are expected framed like GTSRB's, with some background around the sign. Each is read
as it comes and, when that reading is unsure, a little closer too, the two readings averaged
(the model's ``read_zooms`` and ``reread_below``); ``--zoom 1`` reads it once, as it comes,
which suits crops cut tight to the sign's rim.

PATH may be image files, folders (searched recursively) or globs. Prints an aligned
table, or with ``--json`` one JSON object per image and line. A file that cannot be
read gives one error line and the others are still classified; the exit code is then 1,
or 2 when none could be classified (as ``signcam detect`` does for images). Large images
called "not a sign" are likely whole scenes: a note on stderr names ``signcam detect`` for those.

Example:
    $ signcam classify crops/ --json - --top 2
    {"source": "crops/stop.png", "class_id": 14, "label": "Stop", "score": 0.998, "accepted": true,
     "top": [[14, 0.998], [17, 0.001]]}
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from signcam.classes import NOT_A_SIGN, NUM_SIGN_CLASSES, label_of
from signcam.classifier import BATCH, DEFAULT_MODEL, Classifier, best_signs
from signcam.cli import positive_int, probability, read_zoom
from signcam.errors import SourceError
from signcam.files import refuse_overwriting
from signcam.sinks import JSONLinesSink
from signcam.sources import file_system_errors, find_images, local_path, read_image

__all__ = ["add_arguments", "main", "CropResult", "crop_files", "classify_batch", "BATCH_SIZE", "DEFAULT_CROP_CONF"]

#: Images read before each model call: many batches (BATCH), so that the cores reading them side by
#: side (Classifier.predict) wait for each other only at the end, and few enough for the results to
#: stream. Only each image's patch is kept, so large images take no more memory than small ones.
BATCH_SIZE = 64 * BATCH
#: Least probability of an accepted sign in a crop.
DEFAULT_CROP_CONF = 0.5
#: An image this many pixels wide or high, called "not a sign", is likely a whole scene (GTSRB's
#: crops are at most 250 px): the user is told that ``detect`` is the command for those.
SCENE_SIDE = 400


def _top_k(text: str) -> int:
    value = positive_int(text)
    if value > NUM_SIGN_CLASSES:
        raise argparse.ArgumentTypeError(f"must be between 1 and {NUM_SIGN_CLASSES}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (recursive) or globs")
    parser.add_argument("--json", metavar="FILE", help="write JSON lines to FILE ('-': stdout instead of the table)")
    parser.add_argument("--top", type=_top_k, default=3, metavar="K", help="list the K most likely signs")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model written by signcam-train export")
    parser.add_argument("--conf", type=probability, default=DEFAULT_CROP_CONF,
                        help="accept a sign only from this probability on (lower than detect's 0.7, which must "
                             "also turn down background in whole scenes; a crop is meant to hold a sign)")
    parser.add_argument("--zoom", type=read_zoom, nargs="+", metavar="Z",
                        help="read each crop Z times closer; with several Z, at the first and, when unsure "
                             "(--reread-below), at the others too, averaged (default: the model's, 1 and 1.1 for "
                             "the shipped one; 1 alone for crops cut tight to the sign)")
    parser.add_argument("--reread-below", type=probability, metavar="P",
                        help="read a crop at the zooms after the first only when its first reading's top "
                             "probability is below P (default: the model's, 0.7 for the shipped one; "
                             "1: every crop at every zoom)")


@dataclass(frozen=True)
class CropResult:
    """The classification of one crop.

    Args:
        source: Where the image came from.
        class_id: The most likely of the 43 signs (never "not a sign").
        score: Its probability.
        rejected_as: Why it is not accepted: ``"not a sign"`` (the most likely output) or
            ``"low score"`` (below the threshold); ``None`` when accepted.
        top: The K most likely signs as ``(class_id, probability)``.
    """

    source: str
    class_id: int
    score: float
    rejected_as: str | None
    top: list[tuple[int, float]]

    @property
    def accepted(self) -> bool:
        return self.rejected_as is None

    @property
    def label(self) -> str:
        return label_of(self.class_id)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "class_id": self.class_id, "label": self.label, "score": self.score,
                "accepted": self.accepted, "top": [[c, p] for c, p in self.top]}


def crop_files(spec: str) -> list[Path]:
    """The crops a PATH names: a file (tried whatever its suffix) or ``file://`` URL, or the images in a
    folder (recursively) or matching a glob, sorted.

    Raises:
        SourceError: the spec names nothing, or a folder holds no images.
    """
    path = local_path(spec) or Path(spec)  # a file:// URL names its file
    with file_system_errors(spec):  # a name too long, say
        is_file = path.is_file()
    return [path] if is_file else find_images(path, recursive=True)


def classify_batch(classifier: Classifier, patches: np.ndarray, sources: list[str],
                   conf: float = DEFAULT_CROP_CONF, top: int = 3, zooms: list[float] | None = None,
                   reread_below: float | None = None) -> list[CropResult]:
    """Classify whole images as sign crops, from their patches, in one call of the classifier.

    Args:
        classifier: The loaded model.
        patches: Each image's patch (:meth:`Classifier.prepare` of the whole BGR image, one sign).
        sources: A name per image, kept in the results.
        conf: Lowest probability of an accepted sign.
        top: How many of the most likely signs to list.
        zooms: How much closer each image is read, averaged; default: the model's ``read_zooms``.
        reread_below: Read at the zooms after the first only images whose first reading's top
            probability is below this; default: the model's ``reread_below``.
    """
    if not len(patches):
        return []
    probs = classifier.read_crops(patches, zooms, reread_below)
    class_ids, scores, not_a_sign, accepted = best_signs(probs, conf)
    ranked = np.argsort(-probs[:, :NOT_A_SIGN], axis=1, kind="stable")[:, :top]
    return [CropResult(source, int(class_id), round(float(score), 6),
                       None if ok else "not a sign" if rejected else "low score",
                       [(int(c), round(float(p[c]), 6)) for c in order])
            for source, p, class_id, score, rejected, ok, order
            in zip(sources, probs, class_ids, scores, not_a_sign, accepted, ranked, strict=True)]


def _batches(classifier: Classifier, files: list[Path],
             failures: list[str]) -> Iterator[tuple[np.ndarray, list[str], list[bool]]]:
    """The readable images' patches in batches, with their sources and whether each image is
    scene-sized (SCENE_SIDE); unreadable ones are reported on stderr and counted."""
    patches: list[np.ndarray] = []
    sources: list[str] = []
    large: list[bool] = []
    for path in files:
        try:
            image = read_image(path)
        except SourceError as exc:
            print(f"signcam: error: {exc}", file=sys.stderr)
            failures.append(str(path))
            continue
        patches.append(classifier.prepare(image))
        sources.append(str(path))
        large.append(max(image.shape[:2]) >= SCENE_SIDE)
        if len(sources) == BATCH_SIZE:
            yield np.concatenate(patches), sources, large
            patches, sources, large = [], [], []
    if sources:
        yield np.concatenate(patches), sources, large


class _Table:
    """Aligned text rows, widths known up front so rows can be printed as they come.

    The header comes with the first row: when no image can be read, only the errors show.
    """

    def __init__(self, stream: IO[str], sources: list[str], top: int) -> None:
        self.stream = stream
        self.source_width = max([len("source"), *map(len, sources)])
        self.label_width = max(len(label_of(i)) for i in range(NUM_SIGN_CLASSES))
        self.header: str | None = (f"{'source':<{self.source_width}}  {'id':>2}  {'label':<{self.label_width}}  "
                                   f"{'score':>6}  {'accepted':<10}  top {top}")

    def write(self, r: CropResult) -> None:
        if self.header is not None:
            print(self.header, file=self.stream)
            self.header = None
        accepted = "yes" if r.accepted else r.rejected_as
        top = ", ".join(f"{c} {p:.3f}" for c, p in r.top)
        print(f"{r.source:<{self.source_width}}  {r.class_id:>2}  {r.label:<{self.label_width}}  {r.score:6.3f}  "
              f"{accepted:<10}  {top}", file=self.stream)


def main(args: argparse.Namespace) -> int:
    classifier = Classifier(args.model)  # a bad model fails before any image is read
    failures: list[str] = []
    files: list[Path] = []
    for spec in args.paths:
        try:
            files += crop_files(spec)
        except SourceError as exc:
            print(f"signcam: error: {exc}", file=sys.stderr)
            failures.append(spec)
    files = list(dict.fromkeys(files))  # overlapping folders and globs: each image once
    if args.json and args.json != "-":
        refuse_overwriting("--json", args.json, [*files, args.model])
    classified = scenes = 0
    with ExitStack() as stack:
        json_out = stack.enter_context(JSONLinesSink(args.json)) if args.json else None
        table = _Table(sys.stdout, [str(f) for f in files], args.top) if args.json != "-" and files else None
        for patches, sources, large in _batches(classifier, files, failures):
            classified += len(sources)
            results = classify_batch(classifier, patches, sources, args.conf, args.top, args.zoom,
                                     args.reread_below)
            for result, is_large in zip(results, large, strict=True):
                scenes += result.rejected_as == "not a sign" and is_large
                if json_out is not None:
                    json_out.write(result.to_json())
                if table is not None:
                    table.write(result)
    if scenes:
        how_many = f"{scenes} image{'s' if scenes != 1 else ''}"
        print(f"signcam: note: {how_many} of {SCENE_SIDE} px or more called 'not a sign': classify reads each image "
              "whole, as one sign; to find the signs in a photo or a video, use `signcam detect`", file=sys.stderr)
    if not failures:
        return 0
    return 1 if classified else 2
