"""How well the tracking engine names signs frame by frame in clips made from annotated scenes.

Each GTSDB scene becomes a short clip that zooms towards its centre (as ``make_clip.py``
makes them), so every frame's ground truth is the scene's boxes moved by the zoom. The
engine runs on each clip from a fresh start, as ``signcam detect`` would, and only
confirmed tracks count, so a sign is missed in the first frames before its track is
confirmed. Prints, for each ``--scan-every`` value: precision, recall and F1 over all
frames (IoU >= 0.5 and the right class), the share of signs named right in at least one
frame, the mean frames until a sign is first named, and the engine's milliseconds per frame.

Compare settings on the tune scenes (``--split val``); report on ``--split holdout``.

Example:
    python benchmarks/clip_quality.py ../shared/data/gtsdb-train --split val --scan-every 1 3 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from make_clip import zoom_frames
from tqdm import tqdm

from signcam.cli import DocstringHelpFormatter, positive_float, positive_int
from signcam.detection import iou_matrix
from signcam.gtsdb import Scene, load_scenes, select_scenes
from signcam.pipeline import Engine
from signcam.sources import Frame
from training.eval_detect import DetectionScore, match_scene

Box = tuple[int, int, int, int, int]


def moved_box(box: Box, matrix: np.ndarray, width: int, height: int) -> Box | None:
    """A scene's box after the affine ``matrix``, clipped to the frame; ``None`` once the sign is pushed out."""
    x1, y1, x2, y2, class_id = box
    (a, b), (c, d) = np.array([[x1, y1, 1], [x2 + 1, y2 + 1, 1]], float) @ matrix.T
    a, b, c, d = max(a, 0), max(b, 0), min(c, width), min(d, height)
    if c - a >= 8 and d - b >= 8:
        return round(a), round(b), round(c) - 1, round(d) - 1, class_id
    return None


def run_clips(engine: Engine, scenes: list[Scene], hold: int, zoom: float) -> dict:
    score = DetectionScore()
    first_named: list[int | None] = []
    never_named: list[str] = []
    elapsed = []
    for scene in tqdm(scenes, desc=f"scan every {engine.scan_every}", unit="clip", leave=False):
        image = scene.read()
        h, w = image.shape[:2]
        engine.reset()
        named = [None] * len(scene.boxes)
        for index, (frame, matrix) in enumerate(zoom_frames(image, hold, zoom)):
            started = time.perf_counter()
            result = engine.process(Frame(frame, index, index * 40.0, str(scene.path)))
            elapsed.append(time.perf_counter() - started)
            # The scene's signs in this frame, in the scene's order (None: pushed out of the frame).
            moved = [moved_box(box, matrix, w, h) for box in scene.boxes]
            match_scene(result.detections, Scene(scene.number, scene.path, [b for b in moved if b is not None]), score)
            # Which of them are named right in this frame (for time to first naming).
            if result.detections:
                boxes = np.array([d.box for d in result.detections], float)
                for j, box in enumerate(moved):
                    if box is None or named[j] is not None:
                        continue
                    ious = iou_matrix(boxes, np.array([box[:4]], float))[:, 0]
                    if any(iou >= 0.5 and d.class_id == box[4] for iou, d in zip(ious, result.detections, strict=True)):
                        named[j] = index
        first_named += named
        never_named += [f"{scene.path.name} {box}" for box, n in zip(scene.boxes, named, strict=True) if n is None]
    found = [n for n in first_named if n is not None]
    report = score.report(digits=None)  # exact: printed to 3 places below
    return {"scan_every": engine.scan_every, "clips": len(scenes), "frames": len(elapsed),
            "precision": report["precision"], "recall": report["recall"], "f1": report["f1"],
            "recall_by_group": report["recall_by_group"],
            "signs": len(first_named), "signs_named": len(found) / max(len(first_named), 1),
            "frames_to_first_name_median": float(np.median(found)) if found else None,
            "frames_to_first_name_mean": round(float(np.mean(found)), 2) if found else None,
            "engine_ms_per_frame_mean": round(1e3 * float(np.mean(elapsed)), 2), "never_named": never_named}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("folder", type=Path, help="GTSDB-format folder (gt.txt + images)")
    parser.add_argument("--split", choices=("val", "holdout"), default="val",
                        help="val: scenes 375-449, to compare settings; holdout: 450-599, to report")
    parser.add_argument("--scan-every", type=positive_int, nargs="+", default=[1, 3], metavar="N")
    parser.add_argument("--hold", type=positive_int, default=25, help="frames per clip")
    parser.add_argument("--zoom", type=positive_float, default=1.15, help="zoom reached at each clip's end")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    from signcam.classifier import Classifier
    from signcam.recognizer import Recognizer

    scenes = select_scenes(load_scenes(args.folder), args.split)
    reports = []
    for n in args.scan_every:
        r = run_clips(Engine(Recognizer(Classifier(spin=False)), scan_every=n), scenes, args.hold, args.zoom)
        reports.append(r)
        print(f"scan every {n}: precision {r['precision']:.3f}  recall {r['recall']:.3f}  F1 {r['f1']:.3f}  "
              f"(>=32 px: {r['recall_by_group']['>=32'][0]:.3f}); signs named {r['signs_named']:.3f} of "
              f"{r['signs']}, first named after {r['frames_to_first_name_mean']:.2f} frames (mean); "
              f"engine {r['engine_ms_per_frame_mean']:.1f} ms/frame", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "hold": args.hold, "zoom": args.zoom,
                                         "runs": reports}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
