"""How the colour search for "priority road" diamonds does on its own, for a few settings.

For each setting, the recognizer runs on every chosen scene with ``DiamondProposer`` as its
only proposer, and the script prints: the annotated diamonds named right (IoU >= 0.5 and
the class), other signs named right, the false alarms, the candidates per
frame, and the width of the box proposed around each diamond (the proposal nearest its
centre) relative to the sign's: min, median, max and the mean deviation from the median.

The learned finder learnt from the tune scenes, but this search learnt nothing, so the tune
scenes score it fairly: choose settings there (the default), report on ``--split holdout``.

Example:
    python benchmarks/diamonds.py ../shared/data/gtsdb-train
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from signcam.classes import CLASSES
from signcam.cli import DocstringHelpFormatter
from signcam.detection import iou_matrix
from signcam.gtsdb import load_scenes, select_scenes
from signcam.proposals import DiamondProposer
from signcam.recognizer import Recognizer

PRIORITY_ROAD = next(sign.id for sign in CLASSES if sign.name == "Priority road")

#: The settings compared: the shipped one first, then one change each.
SETTINGS = {
    "shipped": {},
    "cores not grown": {"grow": False},
    "whole frame": {"scale": 1.0, "min_side": 10, "max_side": 120},
    "cores from 6 px": {"min_side": 6},
    "cores from 4 px": {"min_side": 4},
    "second box at 2.5": {"box_scales": (2.08, 2.5)},
}


def score(recognizer: Recognizer, images: list[tuple[list, np.ndarray]]) -> dict:
    """Diamonds named right, false alarms, candidates a frame and box widths over ``images``."""
    right = other = false = candidates = diamonds = 0
    ratios = []
    for boxes, image in images:
        truth = [box for box in boxes if box[4] == PRIORITY_ROAD]
        diamonds += len(truth)
        proposed = recognizer.proposer(image)
        candidates += len(proposed)
        for x1, y1, x2, y2, _ in truth:
            centres = (proposed[:, :2] + proposed[:, 2:]) / 2
            near = np.abs(centres - [(x1 + x2) / 2, (y1 + y2) / 2]).max(1) < (x2 - x1 + 1) / 3
            if near.any():
                closest = proposed[near][0]
                ratios.append((closest[2] - closest[0] + 1) / (x2 - x1 + 1))
        for detection in recognizer(image):
            overlaps = iou_matrix(np.array([detection.box], np.float64),
                                  np.array([box[:4] for box in boxes if box[4] == detection.class_id], np.float64))
            if not overlaps.size or overlaps.max() < 0.5:
                false += 1
            elif detection.class_id == PRIORITY_ROAD:
                right += 1
            else:
                other += 1
    ratios = np.array(ratios)
    spread = float(np.mean(np.abs(np.log(ratios / np.median(ratios))))) if len(ratios) else float("nan")
    return {"diamonds": diamonds, "named_right": right, "other_signs_named": other, "false_alarms": false,
            "candidates_per_frame": round(candidates / max(1, len(images)), 2),
            "box_width_ratio": [round(float(f(ratios)), 2) for f in (np.min, np.median, np.max)] if len(ratios) else [],
            "box_width_spread": round(spread, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("folder", type=Path, help="GTSDB-format folder (gt.txt + images)")
    parser.add_argument("--split", choices=("tune", "val", "holdout"), default="tune",
                        help="scenes to score: choose settings on 'tune' (default), report on 'holdout'")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    scenes = select_scenes(load_scenes(args.folder), args.split)
    images = [(scene.boxes, scene.read()) for scene in tqdm(scenes, desc="reading", unit="scene", leave=False)]
    recognizer = Recognizer(proposer=DiamondProposer())
    results = {}
    for name, options in SETTINGS.items():
        recognizer.proposer = DiamondProposer(**options)
        results[name] = {"options": asdict(recognizer.proposer), **score(recognizer, images)}
        r = results[name]
        print(f"{name:<20} named right {r['named_right']} of {r['diamonds']} (other signs {r['other_signs_named']}), "
              f"false alarms {r['false_alarms']}, "
              f"{r['candidates_per_frame']} candidates a frame, box width / sign width (min, median, max) "
              f"{r['box_width_ratio']}, spread {r['box_width_spread']:.1%}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "scenes": len(scenes), "settings": results}, indent=1))


if __name__ == "__main__":
    main()
