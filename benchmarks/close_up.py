"""How well signs are found when they fill much of a small frame, as when a webcam is held up to one.

Each annotated sign at least 30 px wide in the chosen GTSDB scenes is shown magnified, centred
in a 640x480 frame (the scene around it magnified with it), at several widths. The
recognizer runs on each frame as on a still; a sign counts as found when a detection of its
class overlaps it with IoU >= 0.5. Prints the share found at each width, for each
``--levels`` value (how many scales the finder looks at), with ``--coarse-detector`` for the
coarser ones.

Magnifying adds no detail, so wide signs are soft: this measures what sign sizes the finder
copes with, not what a sharp close-up would look like.

Compare settings on the tune scenes (``--split val``); report on ``--split holdout``.

Example:
    python benchmarks/close_up.py ../shared/data/gtsdb-train --split val --levels 1 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from make_clip import frame_size
from tqdm import tqdm

from signcam.cli import DocstringHelpFormatter, positive_int
from signcam.detection import iou
from signcam.gtsdb import Scene, load_scenes, select_scenes
from signcam.proposals import DEFAULT_COARSE_DETECTOR, DEFAULT_DETECTOR, LEVELS, SignDetProposer
from signcam.recognizer import Recognizer

#: A webcam's frame size, the default of ``--frame``.
FRAME = (640, 480)


def close_up(image: np.ndarray, box: tuple[int, int, int, int], width: int,
             frame_size: tuple[int, int] = FRAME) -> tuple[np.ndarray, tuple[float, ...]]:
    """``image`` magnified so the sign in ``box`` is ``width`` px wide, centred in a ``frame_size`` frame."""
    x1, y1, x2, y2 = box
    factor = width / (x2 - x1 + 1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    centre = ((frame_size[0] - 1) / 2, (frame_size[1] - 1) / 2)
    warp = np.float32([[factor, 0, centre[0] - factor * cx], [0, factor, centre[1] - factor * cy]])
    frame = cv2.warpAffine(image, warp, frame_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    half_w, half_h = factor * (x2 - x1 + 1) / 2, factor * (y2 - y1 + 1) / 2
    return frame, (centre[0] - half_w, centre[1] - half_h, centre[0] + half_w, centre[1] + half_h)


def found_share(recognizer: Recognizer, scenes: list[Scene], widths: list[int], min_width: int,
                frame_size: tuple[int, int] = FRAME, only_class: int | None = None) -> dict[int, float]:
    hits, total = dict.fromkeys(widths, 0), 0
    for scene in tqdm(scenes, desc="scenes", unit="scene", leave=False):
        image = scene.read()
        for *box, class_id in scene.boxes:
            if box[2] - box[0] + 1 < min_width or only_class not in (None, class_id):
                continue
            total += 1
            for width in widths:
                frame, truth = close_up(image, tuple(box), width, frame_size)
                hits[width] += any(d.class_id == class_id and iou(d.box, truth) >= 0.5 for d in recognizer(frame))
    return {width: hits[width] / total for width in widths} if total else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("folder", type=Path, help="GTSDB-format folder (gt.txt + images)")
    parser.add_argument("--split", choices=("val", "holdout"), default="val",
                        help="'val': tune scenes 375-449; 'holdout': scenes 450 and up")
    parser.add_argument("--widths", type=positive_int, nargs="+", default=[40, 60, 90, 130, 180, 250, 350],
                        metavar="PX")
    parser.add_argument("--frame", type=frame_size, default=FRAME, metavar="WxH", help="frame size (default: 640x480)")
    parser.add_argument("--levels", type=positive_int, nargs="+", default=[LEVELS], metavar="N")
    parser.add_argument("--detector", default=str(DEFAULT_DETECTOR), help="finder for the first level")
    parser.add_argument("--coarse-detector", default=str(DEFAULT_COARSE_DETECTOR),
                        help="finder for the coarser levels ('none': the first finder at every level)")
    parser.add_argument("--min-width", type=positive_int, default=30, help="signs narrower than this are left out")
    parser.add_argument("--class-id", type=int, help="count only signs of this GTSRB class")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    scenes = select_scenes(load_scenes(args.folder), args.split)
    scenes = [s for s in scenes if s.boxes]
    coarse = None if args.coarse_detector == "none" else args.coarse_detector
    results = {}
    for levels in args.levels:
        proposer = SignDetProposer(args.detector, levels=levels, coarse_path=coarse)
        shares = found_share(Recognizer(proposer=proposer), scenes, args.widths, args.min_width, args.frame,
                             args.class_id)
        results[levels] = shares
        print(f"levels {levels}: found, by sign width in a {args.frame[0]}x{args.frame[1]} frame: "
              + "  ".join(f"{w} px {share:.2f}" for w, share in shares.items()))
    if args.json:
        report = {"split": args.split, "frame": args.frame, "detector": args.detector,
                  "coarse_detector": args.coarse_detector, "class_id": args.class_id, "found": results}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
