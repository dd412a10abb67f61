"""How detection holds up on footage worse than GTSDB's: dusk, motion blur, soft focus, noise, haze, compression.

GTSDB's scenes are sharp daylight stills from one good camera; a dashcam at dusk, behind a
dirty windscreen or writing heavily compressed video is not. Each chosen scene is degraded
in one way at a few strengths, run through the recognizer as a still (the runtime's finder,
diamond search and classifier), and scored as ``signcam-train eval-detect`` scores it: a sign
counts when a detection of its class overlaps it with IoU >= 0.5. The signs missed are told
apart by cause: turned down by the classifier, not proposed, or misread (``missed`` in the JSON).

The degradations (``--only`` picks some), each at three strengths:
- ``dusk``: less light (exposure times 0.5, 0.25, 0.12 in linear light) with the shot and read
  noise a camera's gain brings up with it;
- ``motion``: horizontal motion blur 5, 9 and 15 px long, as a sign sweeps past;
- ``focus``: soft focus or a smeared windscreen, Gaussian blur of sigma 1, 1.5 and 2.5 px;
- ``noise``: sensor noise, Gaussian with sigma 6, 12 and 24 grey levels;
- ``haze``: fog or glare, the scene mixed 30, 50 and 70 % with light grey;
- ``jpeg``: compression at JPEG quality 40, 20 and 10.

Random noise is seeded per scene, so a run repeats exactly. Compare changes on the tune
scenes (``--split tune``, the default); report on ``--split holdout``.

Example:
    python benchmarks/degraded.py ../shared/data/gtsdb-train --split tune --json degraded.json --plot degraded.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from signcam.classifier import Classifier
from signcam.cli import DocstringHelpFormatter, non_negative_int
from signcam.errors import SignCamError
from signcam.gtsdb import load_scenes, select_scenes
from signcam.proposals import SignDetProposer, default_proposer
from signcam.recognizer import Recognizer
from training import camera
from training.eval_detect import DetectionScore, match_scene, miss_cause

Degrade = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


#: Each degradation, its strengths (mildest first), how a strength reads and what it measures.
DEGRADATIONS: dict[str, tuple[Degrade, tuple[float, ...], str, str]] = {
    "dusk": (camera.dusk, (0.5, 0.25, 0.12), "x{:g}", "light, linear"),
    "motion": (lambda image, length, rng: camera.smear(image, length), (5, 9, 15), "{:g} px", "smear length"),
    "focus": (lambda image, sigma, rng: camera.focus(image, sigma), (1, 1.5, 2.5), "{:g} px", "blur sigma"),
    "noise": (camera.noise, (6, 12, 24), "{:g}", "sigma, grey levels"),
    "haze": (lambda image, amount, rng: camera.haze(image, amount), (0.3, 0.5, 0.7), "{:.0%}", "share of grey"),
    "jpeg": (lambda image, quality, rng: camera.jpeg(image, quality), (40, 20, 10), "{:g}", "JPEG quality"),
}


def score_conditions(recognizer: Recognizer, scenes: list, conditions: list[tuple[str, float | None]],
                     seed: int = 0) -> dict[tuple[str, float | None], DetectionScore]:
    """Each condition's score over ``scenes``; ``("none", None)`` is the scenes as they are."""
    scores = {condition: DetectionScore() for condition in conditions}
    for scene in tqdm(scenes, desc="scenes", unit="scene"):
        image = scene.read()
        for name, strength in conditions:
            rng = np.random.default_rng((seed, scene.number))
            shown = image if name == "none" else DEGRADATIONS[name][0](image, strength, rng)
            found = recognizer(shown, keep_rejected=True)
            match_scene([d for d in found if d.accepted], scene, scores[name, strength],
                        rejected=[d for d in found if not d.accepted])
    return scores


def miss_causes(score: DetectionScore) -> dict[str, int]:
    """Why the signs were missed, told apart as ``eval-detect`` lists them: the classifier turned down
    the finder's box on the sign, nothing was proposed there, or it was read as another sign."""
    causes = {"turned_down": 0, "not_proposed": 0, "misread": 0}
    for error in score.errors:
        if error["kind"] == "missed":
            causes[miss_cause(error)] += 1
    return causes


def plot(report: dict, path: Path) -> None:
    """F1 and recall against strength, one panel per degradation, two rows of panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in DEGRADATIONS if name in report["degraded"]]
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.7 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names, strict=False):
        steps = report["degraded"][name]
        labels = ["none"] + [step["strength_label"] for step in steps]
        ax.plot(range(len(labels)), [report["clean"]["f1"]] + [step["f1"] for step in steps], "o-", label="F1")
        ax.plot(range(len(labels)), [report["clean"]["recall_32"]] + [step["recall_32"] for step in steps], "s--",
                label="recall, signs >= 32 px")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel(DEGRADATIONS[name][3], fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("share")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{report['scenes']} GTSDB {report['split']} scenes, {report['signs']} signs, made worse",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _row(score: DetectionScore) -> dict:
    full = score.report()
    return {"f1": full["f1"], "precision": full["precision"], "recall": full["recall"],
            "recall_32": full["recall_by_group"][">=32"][0], "fp_per_signless_scene": full["fp_per_signless_scene"],
            "missed": miss_causes(score)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("folder", type=Path, help="GTSDB-format folder (gt.txt + images)")
    parser.add_argument("--split", choices=("tune", "val", "holdout"), default="tune",
                        help="'tune': scenes below 450 (compare changes here); 'val': 375-449; 'holdout': 450 and up")
    parser.add_argument("--only", nargs="+", choices=tuple(DEGRADATIONS), default=list(DEGRADATIONS),
                        help="degradations to apply (default: all)")
    parser.add_argument("--model", type=Path, help="classifier ONNX (default: the shipped one)")
    parser.add_argument("--detector", type=Path, help="finder ONNX (default: the shipped one)")
    parser.add_argument("--limit", type=non_negative_int, default=0, help="score only the first N scenes (0: all)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--plot", type=Path, help="draw F1 and recall against strength as a PNG")
    args = parser.parse_args(argv)

    scenes = select_scenes(load_scenes(args.folder), args.split)
    if args.limit:
        scenes = scenes[:args.limit]
    if not scenes:
        parser.error(f"{args.folder} holds no {args.split} scene")
    conditions = [("none", None)] + [(name, s) for name in args.only for s in DEGRADATIONS[name][1]]
    try:
        classifier = Classifier(args.model, spin=False)
        proposer = default_proposer(finder=SignDetProposer(args.detector))
    except SignCamError as exc:  # a missing or damaged --model or --detector
        parser.exit(2, f"degraded.py: error: {exc}\n")
    scores = score_conditions(Recognizer(classifier, proposer=proposer), scenes, conditions)

    clean = _row(scores["none", None])
    signs = scores["none", None].tp + scores["none", None].fn
    report = {"split": args.split, "model": str(args.model or "shipped"),
              "detector": str(args.detector or "shipped"), "scenes": len(scenes), "signs": signs,
              "clean": clean, "degraded": {}}
    print(f"{len(scenes)} {args.split} scenes, {signs} signs: as they are, F1 {clean['f1']:.3f}, "
          f"recall of signs >= 32 px {clean['recall_32']:.3f}")
    for name in args.only:
        rows = []
        for strength in DEGRADATIONS[name][1]:
            row = {"strength": strength, "strength_label": DEGRADATIONS[name][2].format(strength),
                   "measure": DEGRADATIONS[name][3],
                   **_row(scores[name, strength])}
            rows.append(row)
            print(f"  {name:<7} {row['strength_label']:<7} F1 {row['f1']:.3f}  precision {row['precision']:.3f}  "
                  f"recall {row['recall']:.3f}  (>= 32 px {row['recall_32']:.3f})  "
                  f"false positives per sign-free scene {row['fp_per_signless_scene']:.3f}; missed: "
                  "{turned_down} turned down, {not_proposed} not proposed, {misread} misread".format(**row["missed"]))
        report["degraded"][name] = rows
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
