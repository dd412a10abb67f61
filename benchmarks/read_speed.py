"""How fast, and how well, the classifier reads whole sign crops: once, as ``signcam classify``
reads them, and at every zoom.

``classify`` reads each crop at the model's first zoom and only the crops whose reading is unsure
(top probability below the model's ``reread_below``) at its other zooms too. This times that
reading on the GTSRB test images, from 32x32 uint8 patches to probabilities (the first reading,
the choice, the zoom and the second reading all inside the clock), beside reading every crop once
and reading every crop at every zoom: batches of 256, the three ways in turn, ``--rounds`` times,
each round through the whole test set. It prints each way's median crops/s, the slowest way's
single-crop latency, how many crops were read again, and the test errors of each way.

Needs the train extra (torchvision reads GTSRB) and GTSRB extracted into DATA_DIR
(``signcam-train fit``'s layout).

Example:
    python benchmarks/read_speed.py /tmp/data --json reports/read-speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
from tqdm import tqdm

from signcam.classifier import DEFAULT_MODEL, Classifier
from signcam.cli import DocstringHelpFormatter, positive_int
from signcam.errors import SignCamError
from signcam.files import write_text_whole
from training.data import load_gtsrb

BATCH = 256


def _ways(classifier: Classifier) -> dict[str, dict]:
    """The readings compared, as keyword arguments of :meth:`Classifier.read_crops`."""
    zooms = classifier.info.read_zooms
    return {"once": {"zooms": zooms[:1]}, "as classify reads": {}, "every zoom": {"reread_below": 1.0}}


def _rate(classifier: Classifier, batches: list[np.ndarray], how: dict) -> float:
    started = time.perf_counter()
    for batch in batches:
        classifier.read_crops(batch, **how)
    return sum(map(len, batches)) / (time.perf_counter() - started)


def _latency_ms(classifier: Classifier, patches: np.ndarray, how: dict, runs: int = 500) -> float:
    times = []
    for i in range(runs):
        started = time.perf_counter()
        classifier.read_crops(patches[i % len(patches):][:1], **how)
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="folder GTSRB is extracted into")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model written by signcam-train export")
    parser.add_argument("--threads", type=positive_int, default=2, help="ONNX Runtime threads")
    parser.add_argument("--rounds", type=positive_int, default=5, help="timing rounds, the three ways in turn")
    parser.add_argument("--limit", type=positive_int, help="only the first N test images (a quick look)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    try:
        classifier = Classifier(args.model, threads=args.threads)
        test = load_gtsrb(args.data_dir, "test")
    except (SignCamError, OSError) as exc:  # a wrong path, a damaged model or data set
        print(f"read_speed: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        test = test.subset(np.arange(min(args.limit, len(test))))
    patches = np.ascontiguousarray(test.images.permute(0, 2, 3, 1).numpy())
    labels = test.labels.numpy()
    batches = [patches[i:i + BATCH] for i in range(0, len(patches) - BATCH + 1, BATCH)]  # full batches only
    ways = _ways(classifier)

    probs = {name: classifier.read_crops(patches, **how) for name, how in ways.items()}
    reread = float((probs["once"].max(1) < classifier.info.reread_below).mean())
    errors = {name: int((p[:, :-1].argmax(1) != labels).sum()) for name, p in probs.items()}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    for _ in tqdm(range(args.rounds), desc="rounds", unit="round"):
        for name, how in ways.items():
            rates[name].append(_rate(classifier, batches, how))
    latency = {name: _latency_ms(classifier, patches, how) for name, how in ways.items() if name != "as classify reads"}

    print(f"{len(labels)} GTSRB test images, {args.threads} threads, batches of {BATCH}, {args.rounds} rounds; "
          f"model reads at x{' and x'.join(map(str, classifier.info.read_zooms))}, again where its first reading "
          f"is below {classifier.info.reread_below}: {reread:.1%} of these")
    for name in ways:
        spread = f"{min(rates[name]):,.0f}-{max(rates[name]):,.0f}"
        print(f"  {name:<18} {statistics.median(rates[name]):>7,.0f} crops/s ({spread})   "
              f"test errors {errors[name]} (top-1 {1 - errors[name] / len(labels):.2%})")
    ratios = [a / b for a, b in zip(rates["as classify reads"], rates["once"], strict=True)]
    print(f"  as classify reads / once, round by round: median {statistics.median(ratios):.3f}")
    print(f"  one crop: {latency['once']:.3f} ms read once, {latency['every zoom']:.3f} ms read at every zoom "
          f"(medians of 500)")
    if args.json:
        write_text_whole(args.json, json.dumps({
            "model": str(args.model), "images": len(labels), "threads": args.threads, "batch": BATCH,
            "read_zooms": list(classifier.info.read_zooms), "reread_below": classifier.info.reread_below,
            "reread_share": round(reread, 4), "test_errors": errors,
            "crops_per_s": {name: [round(r) for r in values] for name, values in rates.items()},
            "crops_per_s_median": {name: round(statistics.median(values)) for name, values in rates.items()},
            "ratio_as_classify_reads_to_once_median": round(statistics.median(ratios), 3),
            "single_crop_ms_median": {name: round(ms, 3) for name, ms in latency.items()},
            "cpu": platform.processor() or platform.machine(), "onnxruntime": onnxruntime.__version__,
        }, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
