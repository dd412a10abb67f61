"""How the classifier reads distant signs: GTSRB test images shrunk to a few pixels, read once.

A sign far down the road covers a few pixels of the frame, and the engine reads the crop the
finder cut around it once, enlarged to the network's 32x32. This shrinks every GTSRB test image
to S x S (an area average, as a camera's pixels gather light) and enlarges it back (bilinear,
as a crop is resized), then reads it once. Prints, for each model and size, the top-1 accuracy
over the 43 signs, the share read wrongly with at least the recognizer's confidence (the
misreadings the app could show), and the commonest confusions.

GTSRB's images keep a margin of about 10 % around the sign, so at S = 16 the sign itself is
about 13 px across. The test set is read here to describe models, not to choose between them.

Example:
    python benchmarks/distant_signs.py --data-dir DATA --models assets/signnet.onnx other.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from signcam.classes import NUM_SIGN_CLASSES, label_of
from signcam.classifier import DEFAULT_MODEL, Classifier
from signcam.cli import DocstringHelpFormatter, positive_int
from signcam.errors import SignCamError
from signcam.recognizer import DEFAULT_CONF

#: Confusions listed per model and size.
TOP_CONFUSIONS = 5


def shrink(images: np.ndarray, size: int) -> np.ndarray:
    """N x S x S x 3 images shrunk to ``size`` px and enlarged back to S (unchanged at S)."""
    side = images.shape[1]
    if size >= side:
        return images
    return np.stack([cv2.resize(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA), (side, side),
                                interpolation=cv2.INTER_LINEAR) for image in images])


def score(probs: np.ndarray, labels: np.ndarray, conf: float) -> dict:
    """Accuracy over the 43 signs, the share misread at ``conf`` or more, and the commonest confusions."""
    best = probs[:, :NUM_SIGN_CLASSES].argmax(1)
    wrong = best != labels
    confident = probs[np.arange(len(probs)), best] >= conf
    pairs, counts = np.unique(np.stack([labels[wrong], best[wrong]], 1), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:TOP_CONFUSIONS]
    return {"accuracy": float(1 - wrong.mean()), "confident_wrong": float((wrong & confident).mean()),
            "confusions": [[int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i])] for i in order]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="GTSRB root (holds gtsrb/GTSRB/...)")
    parser.add_argument("--models", nargs="+", default=[str(DEFAULT_MODEL)], metavar="ONNX")
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[32, 20, 16, 13], metavar="PX")
    parser.add_argument("--conf", type=float, default=DEFAULT_CONF, help="the recognizer's least accepted score")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    from training.data import load_gtsrb  # torch and torchvision: the training extra

    try:
        classifiers = {path: Classifier(path) for path in args.models}
        test = load_gtsrb(args.data_dir, "test")
    except (SignCamError, OSError) as exc:
        print(f"distant_signs: {exc}", file=sys.stderr)
        return 2
    images, labels = test.images.numpy().transpose(0, 2, 3, 1), test.labels.numpy()
    results: dict[str, dict[int, dict]] = {}
    for path, classifier in classifiers.items():
        results[path] = {}
        for size in args.sizes:
            # Read once (one zoom), as the engine reads a crop the finder cut.
            probs = classifier.predict_crops(list(shrink(images, size)), zooms=[1.0])
            figures = score(probs, labels, args.conf)
            results[path][size] = figures
            top = ", ".join(f"{label_of(t)} as {label_of(p)} ({n})" for t, p, n in figures["confusions"][:3])
            print(f"{Path(path).name} at {size} px: top-1 {figures['accuracy']:.4f}, misread at >= {args.conf:g} "
                  f"{figures['confident_wrong']:.4f}; most often {top}")
    if args.json:
        args.json.write_text(json.dumps({"images": len(labels), "conf": args.conf, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
