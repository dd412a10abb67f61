"""How fast, and how well, the classifier reads whole sign crops: once, as ``signcam classify``
reads them, and at every zoom.

``classify`` reads each crop at the model's first zoom and only the crops whose reading is unsure
(top probability below the model's ``reread_below``) at its other zooms too. This times that
reading on the GTSRB test images, from 32x32 uint8 patches to probabilities (the first reading,
the choice, the zoom and the second reading all inside the clock), beside reading every crop once
and reading every crop at every zoom. Each way reads the patches as ``classify`` hands them over,
2,048 at a time, which the classifier reads in batches of 32 side by side, one per core. A fourth
way reads as ``classify`` read before: 256 at a time, each read by one session whose threads share
each operator, to show what reading side by side gains. The ways take turns,
``--rounds`` times, each round through the whole test set. It prints each way's median crops/s,
the ratios round by round, the single-crop latency, how many crops were read again, and the test
errors of each way.

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

from signcam.classifier import BATCH, DEFAULT_MODEL, Classifier
from signcam.cli import DocstringHelpFormatter, positive_int
from signcam.commands.classify import BATCH_SIZE
from signcam.errors import SignCamError
from signcam.files import write_text_whole
from training.data import load_gtsrb

#: Crops ``classify`` handed over at a time before the classifier read batches side by side.
BEFORE = 256
#: The fourth way: as classify reads, but BEFORE at a time, each read by one session with its
#: threads sharing each operator (``Classifier(side_by_side=False)``), as classify read before.
ONE_SESSION = f"one session, {BEFORE} at a time"


def _ways(classifier: Classifier) -> dict[str, dict]:
    """The readings compared, as keyword arguments of :meth:`Classifier.read_crops`."""
    zooms = classifier.info.read_zooms
    return {"once": {"zooms": zooms[:1]}, "as classify reads": {}, "every zoom": {"reread_below": 1.0}}


def _rate(classifier: Classifier, patches: np.ndarray, chunk: int, how: dict) -> float:
    """Crops/s of reading ``patches`` handed over ``chunk`` at a time."""
    started = time.perf_counter()
    for start in range(0, len(patches), chunk):
        classifier.read_crops(patches[start:start + chunk], **how)
    return len(patches) / (time.perf_counter() - started)


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
        one_session = Classifier(args.model, threads=args.threads, side_by_side=False)
        test = load_gtsrb(args.data_dir, "test")
    except (SignCamError, OSError) as exc:  # a wrong path, a damaged model or data set
        print(f"read_speed: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        test = test.subset(np.arange(min(args.limit, len(test))))
    patches = np.ascontiguousarray(test.images.permute(0, 2, 3, 1).numpy())
    labels = test.labels.numpy()
    ways = _ways(classifier)
    timed = {name: (classifier, BATCH_SIZE, how) for name, how in ways.items()}
    timed[ONE_SESSION] = (one_session, BEFORE, ways["as classify reads"])

    probs = {name: classifier.read_crops(patches, **how) for name, how in ways.items()}
    reread = float((probs["once"].max(1) < classifier.info.reread_below).mean())
    errors = {name: int((p[:, :-1].argmax(1) != labels).sum()) for name, p in probs.items()}
    rates: dict[str, list[float]] = {name: [] for name in timed}
    for _ in tqdm(range(args.rounds), desc="rounds", unit="round"):
        for name, (reader, chunk, how) in timed.items():
            rates[name].append(_rate(reader, patches, chunk, how))
    latency = {name: _latency_ms(classifier, patches, how) for name, how in ways.items() if name != "as classify reads"}

    print(f"{len(labels)} GTSRB test images, {args.threads} threads, {BATCH_SIZE} crops handed over at a time, "
          f"{args.rounds} rounds; model reads at x{' and x'.join(map(str, classifier.info.read_zooms))}, again "
          f"where its first reading is below {classifier.info.reread_below}: {reread:.1%} of these")
    for name in timed:
        spread = f"{min(rates[name]):,.0f}-{max(rates[name]):,.0f}"
        scored = name if name in errors else "as classify reads"
        print(f"  {name:<33} {statistics.median(rates[name]):>7,.0f} crops/s ({spread})   "
              f"test errors {errors[scored]} (top-1 {1 - errors[scored] / len(labels):.2%})")
    ratios = {f"as classify reads / {other}": [a / b for a, b in zip(rates["as classify reads"], rates[other],
                                                                         strict=True)]
              for other in ("once", ONE_SESSION)}
    for name, values in ratios.items():
        print(f"  {name}, round by round: median {statistics.median(values):.3f}")
    print(f"  one crop: {latency['once']:.3f} ms read once, {latency['every zoom']:.3f} ms read at every zoom "
          f"(medians of 500)")
    if args.json:
        write_text_whole(args.json, json.dumps({
            "model": str(args.model), "images": len(labels), "threads": args.threads, "handed_over": BATCH_SIZE,
            "batch": BATCH,
            "read_zooms": list(classifier.info.read_zooms), "reread_below": classifier.info.reread_below,
            "reread_share": round(reread, 4), "test_errors": errors,
            "crops_per_s": {name: [round(r) for r in values] for name, values in rates.items()},
            "crops_per_s_median": {name: round(statistics.median(values)) for name, values in rates.items()},
            "ratios_median": {name: round(statistics.median(values), 3) for name, values in ratios.items()},
            "single_crop_ms_median": {name: round(ms, 3) for name, ms in latency.items()},
            "cpu": platform.processor() or platform.machine(), "onnxruntime": onnxruntime.__version__,
        }, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
