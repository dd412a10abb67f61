"""``signcam-train eval-detect``: detection quality on GTSDB-format scenes (gt.txt + images).

A detection is right when it overlaps an annotated sign with IoU >= 0.5 *and* names its
class. Reports precision, recall and F1, recall by sign width and by category, the mean IoU
of the signs found, false positives per sign-free scene, and lists each missed sign and each
false alarm. By default only the held-out scenes (numbers >= 450) are scored: tune on
``--split tune``, report on ``--split holdout``. ``--split val`` scores the last 75 tune
scenes, for comparing models trained without them (``fit-detector --validation``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from signcam.classes import CATEGORIES, category_of, label_of
from signcam.classifier import Classifier
from signcam.cli import number, positive_int, probability
from signcam.detection import Detection, iou_matrix
from signcam.errors import DataError
from signcam.files import check_writable, output_folder, refuse_overwriting, write_text_whole
from signcam.gtsdb import HOLDOUT_FROM, VALIDATION_FROM, Scene, load_scenes, select_scenes
from signcam.pipeline import model_files
from signcam.proposals import ColourProposer, DiamondProposer, SignDetProposer, default_proposer
from signcam.recognizer import VOTE_IOU, Proposer, Recognizer
from signcam.sinks import ImageFolderSink

__all__ = ["add_arguments", "main", "DetectionScore", "describe_error", "miss_cause", "match_scene", "finder_scale",
           "WIDTH_BINS", "MAX_FINDER_SCALE"]

WIDTH_BINS = (("<24", 0, 24), ("24-48", 24, 48), (">=48", 48, 10_000))
#: Largest --finder-scale: the frame enlarged twice each way, four times its pixels. The finder's
#: memory and time grow with the square of the scale (at 20 it ran out of memory).
MAX_FINDER_SCALE = 2.0


@dataclass
class DetectionScore:
    """Counts accumulated over scenes; figures are derived from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    located: int = 0  # right place, any class
    fp_signless: int = 0
    signless_scenes: int = 0
    hits: Counter = field(default_factory=Counter)
    totals: Counter = field(default_factory=Counter)
    errors: list[dict] = field(default_factory=list)  # each missed sign and false alarm, to look at
    hit_ious: list[float] = field(default_factory=list)  # how well each sign found was boxed

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / max(p + r, 1e-9)

    def count(self, scene: Scene, taken: np.ndarray, located: np.ndarray, false_alarms: int) -> None:
        """Add one scene: which of its signs were matched (``taken``) or at least boxed (``located``)."""
        for j, (x1, _, x2, _, cls) in enumerate(scene.boxes):
            width = x2 - x1 + 1
            keys = [name for name, lo, hi in WIDTH_BINS if lo <= width < hi] + [category_of(cls)]
            keys += [">=32"] if width >= 32 else []
            for key in keys:
                self.totals[key] += 1
                self.hits[key] += int(taken[j])
        self.tp += int(taken.sum())
        self.fn += int((~taken).sum())
        self.located += int(located.sum())
        self.fp += false_alarms
        if not scene.boxes:
            self.signless_scenes += 1
            self.fp_signless += false_alarms

    def recall_of(self, key: str) -> float | None:
        return self.hits[key] / self.totals[key] if self.totals[key] else None

    def report(self, digits: int | None = 4) -> dict:
        """The figures, each ratio rounded to ``digits`` (``None``: exact, for printing at another precision)."""
        def ratio(value: float | None) -> float | None:
            return value if value is None or digits is None else round(value, digits)

        groups = [name for name, _, _ in WIDTH_BINS] + [">=32"] + list(CATEGORIES)
        return {
            "signs": self.tp + self.fn, "detections": self.tp + self.fp,
            "precision": ratio(self.precision), "recall": ratio(self.recall), "f1": ratio(self.f1),
            "located_any_class": ratio(self.located / max(self.tp + self.fn, 1)),
            "mean_iou_of_hits": ratio(float(np.mean(self.hit_ious))) if self.hit_ious else None,
            "recall_by_group": {g: (ratio(self.recall_of(g)), self.totals[g]) for g in groups},
            "signless_scenes": self.signless_scenes,
            "fp_per_signless_scene": ratio(self.fp_signless / max(self.signless_scenes, 1)),
            "errors": self.errors,
        }


def match_scene(detections: list[Detection], scene: Scene, score: DetectionScore, iou_min: float = 0.5,
                rejected: Sequence[Detection] = ()) -> list[bool]:
    """Greedy best-score-first matching; updates ``score``; returns per-detection correctness.

    Each missed sign is added to ``score.errors`` with what was read at its place, if anything
    overlapped it (``read_as``), else the best of the ``rejected`` candidates that did
    (``turned_down``: the classifier saw it and said no); each false alarm with the sign it
    overlapped, if any (``at``).
    """
    gt = np.array([b[:4] for b in scene.boxes], float).reshape(-1, 4)
    gt_cls = [b[4] for b in scene.boxes]
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    ious = iou_matrix(np.array([detections[i].box for i in order], float).reshape(-1, 4), gt)
    taken = np.zeros(len(gt), bool)
    correct = [False] * len(detections)
    for row, i in enumerate(order):
        candidates = [j for j in np.argsort(-ious[row]) if ious[row, j] >= iou_min and not taken[j]
                      and gt_cls[j] == detections[i].class_id]
        if candidates:
            taken[candidates[0]] = True
            correct[i] = True
            score.hit_ious.append(float(ious[row, candidates[0]]))
    score.count(scene, taken, located=(ious >= iou_min).any(0), false_alarms=correct.count(False))
    ranked = [detections[i] for i in order]
    score.errors += _misses(scene, ranked, ious, taken, rejected, iou_min)
    score.errors += _false_alarms(scene, ranked, ious, [correct[i] for i in order], iou_min)
    return correct


def _misses(scene: Scene, ranked: list[Detection], ious: np.ndarray, taken: np.ndarray,
            rejected: Sequence[Detection], iou_min: float) -> list[dict]:
    """A record per sign not matched: what was read there, or else what the classifier turned down there."""
    records = []
    for j in np.flatnonzero(~taken):
        x1, y1, x2, y2, cls = scene.boxes[j]
        overlapping = np.flatnonzero(ious[:, j] >= iou_min)
        read_as = label_of(ranked[overlapping[0]].class_id) if len(overlapping) else None
        sign = np.array([[x1, y1, x2, y2]], float)
        seen = [d for d in rejected if iou_matrix(np.array([d.box], float), sign)[0, 0] >= iou_min]
        best = max(seen, key=lambda d: d.score, default=None)
        records.append({"scene": scene.number, "kind": "missed", "box": [x1, y1, x2, y2], "width": x2 - x1 + 1,
                        "label": label_of(cls), "read_as": read_as,
                        "turned_down": None if read_as or best is None
                        else [label_of(best.class_id), round(float(best.score), 3)]})
    return records


def _false_alarms(scene: Scene, ranked: list[Detection], ious: np.ndarray, correct: list[bool],
                  iou_min: float) -> list[dict]:
    """A record per detection that matched no sign: the sign it lay on (wrong class), if any."""
    records = []
    for row, detection in enumerate(ranked):
        if not correct[row]:
            on_sign = np.flatnonzero(ious[row] >= iou_min)
            records.append({"scene": scene.number, "kind": "false alarm",
                            "box": [round(float(v)) for v in detection.box],
                            "label": label_of(detection.class_id), "score": round(float(detection.score), 3),
                            "at": label_of(scene.boxes[on_sign[0]][4]) if len(on_sign) else None})
    return records


def finder_scale(text: str) -> float:
    """An argparse type: the size of the frame SignDet sees, above 0 and at most :data:`MAX_FINDER_SCALE`."""
    value = number(text, float)
    if not 0 < value <= MAX_FINDER_SCALE:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {MAX_FINDER_SCALE:g} (the frame twice its size "
                                         f"each way; memory grows with the square), got {value}")
    return value


def _vote_iou(text: str) -> float | None:
    if text == "none":
        return None
    try:
        return probability(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} ('none' turns box voting off)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="GTSDB-format folder (gt.txt + 00000.ppm/.jpg ...)")
    parser.add_argument("--split", choices=("holdout", "tune", "val", "all"), default="holdout",
                        help="which scenes to score; tune parameters on 'tune' only; 'val': the tune scenes "
                             "that fit-detector --validation keeps out of training")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    parser.add_argument("--conf", type=probability, default=None, help="classifier confidence threshold")
    parser.add_argument("--proposer", choices=("signdet+diamond", "signdet", "diamond", "colour"),
                        default="signdet+diamond",
                        help="where candidates come from: the learned detector and priority-road diamonds by "
                             "colour (as the runtime), the detector alone, the diamonds alone, or colour "
                             "regions (no model) (default: %(default)s)")
    parser.add_argument("--detector", type=Path, help="SignDet ONNX (default: the shipped one)")
    parser.add_argument("--peak-threshold", type=probability,
                        help="SignDet heatmap peak threshold (default: the runtime's)")
    parser.add_argument("--max-peaks", type=positive_int, help="most SignDet peaks per frame (default: the runtime's)")
    parser.add_argument("--finder-scale", type=finder_scale,
                        help=f"size of the frame SignDet sees, relative to the original, up to {MAX_FINDER_SCALE:g} "
                             "(default: the runtime's)")
    parser.add_argument("--levels", type=positive_int,
                        help="scales SignDet looks at, each half the last (default: the runtime's)")
    parser.add_argument("--coarse-detector",
                        help="SignDet ONNX for the coarser scales (default: the shipped one; 'none': --detector "
                             "at every scale)")
    parser.add_argument("--vote-iou", type=_vote_iou, default=VOTE_IOU,
                        help="box voting: candidates of a sign's class overlapping its box this much move it "
                             "('none': the best-scoring box alone; default: %(default)s, the runtime's)")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--save-dir", type=Path, help="write annotated scenes with errors here")


def miss_cause(error: dict) -> str:
    """Why a sign was missed: ``"misread"`` (read as another sign), ``"turned_down"`` (the
    classifier said no to a box on it) or ``"not_proposed"`` (no candidate there)."""
    return "misread" if error["read_as"] else "turned_down" if error["turned_down"] else "not_proposed"


def describe_error(error: dict) -> str:
    """One line per error, e.g. ``00467 missed Speed limit 60 (37 px), read as Speed limit 80``."""
    if error["kind"] == "missed":
        cause = miss_cause(error)
        if cause == "misread":
            found = f"read as {error['read_as']}"
        elif cause == "turned_down":
            found = "turned down (best guess {}, {:.2f})".format(*error["turned_down"])
        else:
            found = "no candidate there"
        return f"{error['scene']:05d} missed {error['label']} ({error['width']} px), {found}"
    where = f"on a {error['at']} sign" if error["at"] else "at " + ",".join(map(str, error["box"]))
    return f"{error['scene']:05d} false alarm {error['label']} {error['score']:.2f}, {where}"


def _saved_name(scene: Scene) -> str:
    """The file name of a scene's annotated image in ``--save-dir``."""
    return f"{scene.number:05d}.jpg"


def _refuse_outputs(args: argparse.Namespace, every: list[Scene]) -> None:
    """Refuses, before the evaluation, outputs that would replace the dataset or the models, or (``--json``)
    cannot be written."""
    dataset = [args.folder / "gt.txt", *(scene.path for scene in every),
               *model_files(args.model, args.detector, args.coarse_detector)]
    if args.json:
        refuse_overwriting("--json", args.json, dataset)
        check_writable(args.json)
    if args.save_dir:
        refuse_overwriting("--save-dir", args.save_dir, dataset, folder=True)


def _proposer(args: argparse.Namespace) -> Proposer:
    """Where candidates come from: colour regions, or SignDet with the options given (the runtime's otherwise)."""
    if args.proposer == "colour":
        return ColourProposer()
    if args.proposer == "diamond":
        return DiamondProposer()
    options = {"threshold": args.peak_threshold, "max_peaks": args.max_peaks, "scale": args.finder_scale,
               "levels": args.levels}
    options = {name: value for name, value in options.items() if value is not None}
    finder = SignDetProposer.from_files(args.detector, args.coarse_detector, **options)
    return default_proposer(finder=finder) if args.proposer == "signdet+diamond" else finder


def _score(recognizer: Recognizer, scenes: list[Scene], saved: ImageFolderSink | None,
           split: str) -> tuple[DetectionScore, list[float]]:
    """Runs ``recognizer`` on each scene and matches what it found; the scenes with errors go to ``saved``.

    Returns:
        The score and the seconds the recognizer took on each scene.
    """
    from signcam.overlay import draw_overlay

    score = DetectionScore()
    elapsed = []
    for scene in tqdm(scenes, desc=f"eval-detect ({split})", unit="scene"):
        image = scene.read()
        started = time.perf_counter()
        found = recognizer(image, keep_rejected=True)
        elapsed.append(time.perf_counter() - started)
        detections = [d for d in found if d.accepted]
        correct = match_scene(detections, scene, score, rejected=[d for d in found if not d.accepted])
        if saved is not None and (not all(correct) or sum(correct) < len(scene.boxes)):
            shown = draw_overlay(image, detections)
            for x1, y1, x2, y2, _ in scene.boxes:
                cv2.rectangle(shown, (x1 - 3, y1 - 3), (x2 + 3, y2 + 3), (255, 255, 255), 1)
            saved.write(shown, _saved_name(scene))
    return score, elapsed


def _print_report(report: dict) -> None:
    """The figures to 3 places, then one line per error."""
    print(f"scenes {report['scenes']} ({report['split']}), signs {report['signs']}: precision "
          f"{report['precision']:.3f}  recall {report['recall']:.3f}  F1 {report['f1']:.3f}  "
          f"(located, any class: {report['located_any_class']:.3f})")
    if report["mean_iou_of_hits"] is not None:
        print(f"  mean IoU of the signs found: {report['mean_iou_of_hits']:.3f}")
    for group, (value, count) in report["recall_by_group"].items():
        print(f"  recall {group:<12} {'-' if value is None else f'{value:.3f}':>6}  of {count}")
    print(f"  false positives per sign-free scene: {report['fp_per_signless_scene']:.3f} "
          f"({report['signless_scenes']} scenes)")
    for error in report["errors"]:
        print("  " + describe_error(error))


def main(args: argparse.Namespace) -> int:
    every = load_scenes(args.folder)
    scenes = select_scenes(every, args.split)
    if not scenes:
        raise DataError(f"{args.folder} holds no {args.split} scene (holdout: numbered {HOLDOUT_FROM} and up, "
                        f"tune: below, val: {VALIDATION_FROM}-{HOLDOUT_FROM - 1}); --split all scores every scene")
    _refuse_outputs(args, every)  # before any model loads
    # --save-dir goes again if nothing is saved into it (a model that does not load, say).
    with output_folder(args.save_dir) if args.save_dir else contextlib.nullcontext():
        saved = None
        if args.save_dir:
            saved = ImageFolderSink(args.save_dir)
            check_writable(saved.folder / _saved_name(scenes[0]))
        proposer = _proposer(args)
        recognizer = Recognizer(Classifier(args.model, spin=False), proposer=proposer, vote_iou=args.vote_iou)
        if args.conf is not None:
            recognizer.conf = args.conf
        score, elapsed = _score(recognizer, scenes, saved, args.split)
    report = score.report(digits=None)  # printed to 3 places from the exact figures, kept to 4 in --json
    report.update(split=args.split, scenes=len(scenes), conf=recognizer.conf, vote_iou=recognizer.vote_iou,
                  ms_per_scene_median=round(1e3 * float(np.median(elapsed)), 1) if elapsed else None)
    _print_report(report)
    if args.json:
        write_text_whole(args.json, json.dumps({**report, **score.report()}, indent=1))
    return 0
