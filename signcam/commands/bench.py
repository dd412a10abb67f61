"""Time the classifier and every stage of the pipeline on this machine.

Prints classifier throughput (crops/s, batched) and single-crop latency, then, for a
SOURCE, decode-only speed and the end-to-end pipeline (decode, proposals, classify,
track, overlay) with per-stage medians, p95 frame latency, the ratio to decode-only and
the process's memory over the run. ``--frames 20000 --loop`` shows memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TextIO

import numpy as np
from tqdm import tqdm

from signcam.cli import add_engine_arguments, positive_int
from signcam.commands.classify import BATCH_SIZE
from signcam.errors import SourceError
from signcam.files import check_writable, refuse_overwriting, write_text_whole
from signcam.pipeline import model_files
from signcam.sinks import JSONLinesSink

__all__ = ["add_arguments", "main", "bench_classifier", "bench_pipeline"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", default="demo", help="video, image folder, camera or 'demo'")
    parser.add_argument("--frames", type=positive_int, default=300, help="frames to time in each pass")
    parser.add_argument("--loop", action="store_true", help="rewind a file at its end to reach --frames")
    add_engine_arguments(parser)
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="ONNX Runtime threads for each network (default: all cores, at most 4)")
    parser.add_argument("--no-pipeline", action="store_true", help="time the classifier only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON (one line; '-': stdout)")


#: The stages timed on every frame, in the order ``signcam bench`` prints them.
STAGES = ("decode", "proposals", "classify", "track", "overlay")


def _rss_mb() -> float | None:
    """The process's resident memory, where /proc tells it (Linux); ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_classifier(classifier, batch: int = BATCH_SIZE, repeats: int = 20, singles: int = 500) -> dict:
    """Batched throughput and single-crop latency on random patches.

    ``batch`` crops go to each call, as ``signcam classify`` hands them over; the classifier reads
    them side by side in smaller batches (:class:`signcam.classifier.Classifier`).
    """
    rng = np.random.default_rng(0)
    size = classifier.info.input_size
    patches = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    for _ in range(3):
        classifier.predict(patches)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict(patches)
        rates.append(batch / (time.perf_counter() - started))
    latencies = []
    for i in range(singles):
        started = time.perf_counter()
        classifier.predict(patches[i % batch: i % batch + 1])
        latencies.append((time.perf_counter() - started) * 1e3)
    return {"crops_per_s_median": round(float(np.median(rates))), "batch": batch,
            "single_crop_ms_median": round(float(np.median(latencies)), 3),
            "single_crop_ms_p95": round(float(np.percentile(latencies, 95)), 3)}


def _frames(source, count: int, loop: bool):
    """Up to ``count`` frames, rewinding a file at its end when ``loop`` is set."""
    produced = 0
    while produced < count:
        frame = source.read()
        if frame is None:
            if not loop or produced == 0 or source.is_live:
                return
            source.seek(0)
            continue
        produced += 1
        yield frame


def bench_pipeline(spec: str, engine, frames: int, loop: bool) -> dict:
    """Decode-only pass, then the full pipeline, on the same frames."""
    from signcam.overlay import draw_overlay
    from signcam.sources import open_source

    with open_source(spec) as source:
        started, count = time.perf_counter(), 0
        for _ in tqdm(_frames(source, frames, loop), total=frames, desc="decode only", unit="frame", leave=False):
            count += 1
        decode_fps = count / max(time.perf_counter() - started, 1e-9)
    if count == 0:
        raise SourceError(f"{spec} gave no frame to time")

    # Milliseconds per frame: the stages, then the whole frame. Allocated and written once before
    # the first memory reading, so the benchmark's own figures do not grow the process (lists of
    # Python floats would add about 0.2 MB per 1,000 frames).
    ms = np.full((frames, len(STAGES) + 1), np.nan)
    count, rss, scanned = 0, [(0, _rss_mb())], 0
    size = None
    with open_source(spec) as source:
        frames_iter = _frames(source, frames, loop)
        bar = tqdm(total=frames, desc="pipeline", unit="frame", leave=False)
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            frame = next(frames_iter, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            result = engine.process(frame)
            t2 = time.perf_counter()
            draw_overlay(frame.image, result.detections, result.speed_limit)
            t3 = time.perf_counter()
            size = frame.image.shape[1::-1]
            timings = result.timings_ms
            ms[count] = ((t1 - t0) * 1e3, timings.get("proposals", 0.0), timings.get("classify", 0.0),
                         timings.get("track", 0.0), (t3 - t2) * 1e3, (t3 - t0) * 1e3)
            scanned += result.scanned
            count += 1
            if count % 1000 == 0:
                rss.append((count, _rss_mb()))
            bar.update()
        wall = time.perf_counter() - started
        bar.close()
    if rss[-1][0] != count:
        rss.append((count, _rss_mb()))
    ms, latency = ms[:count, :-1], ms[:count, -1]
    fps = count / max(wall, 1e-9)
    return {
        "source": spec, "frame_size": list(size) if size else None, "frames": count,
        "decode_only_fps": round(decode_fps, 1), "pipeline_fps": round(fps, 1),
        "ratio_to_decode": round(fps / max(decode_fps, 1e-9), 3),
        "scan_every": engine.scan_every, "frames_searched_whole": scanned,
        "latency_ms_median": round(float(np.median(latency)), 2),
        "latency_ms_p95": round(float(np.percentile(latency, 95)), 2),
        "stage_ms_median": {k: round(float(np.median(ms[:, i])), 2) for i, k in enumerate(STAGES)},
        # (frames processed, MB): flat after the first thousand frames means no leak. Empty where unknown.
        "rss_mb": [(frames, round(mb, 1)) for frames, mb in rss if mb is not None],
    }


def main(args: argparse.Namespace) -> int:
    # A wrong source, an unwritable --json or one over a file read fails now, not after minutes of timing.
    read = model_files(args.model, args.detector, args.coarse_detector)
    if not args.no_pipeline:
        from signcam.sources import open_source

        with open_source(args.source) as source:
            read += source.files
    if args.json and args.json != "-":
        refuse_overwriting("--json", args.json, read)
        check_writable(args.json)
    # With the JSON on standard output, the text goes to standard error, so `--json - | jq` works.
    report = _run(args, sys.stderr if args.json == "-" else sys.stdout)
    if args.json == "-":
        with JSONLinesSink("-") as json_sink:
            json_sink.write(report)
    elif args.json:  # only now, and whole: a run that fails or is stopped leaves an earlier report as it was
        write_text_whole(args.json, json.dumps(report) + "\n")
    return 0


def _run(args: argparse.Namespace, out: TextIO) -> dict:
    """Time what ``args`` asks for, print the figures to ``out``; returns them."""
    from signcam.classifier import Classifier

    classifier = Classifier(args.model, threads=args.threads)
    report = {"classifier": bench_classifier(classifier)}
    c = report["classifier"]
    print(f"classifier: {c['crops_per_s_median']} crops/s (batch {c['batch']}), single crop "
          f"{c['single_crop_ms_median']:.3f} ms median, {c['single_crop_ms_p95']:.3f} ms p95", file=out)
    if not args.no_pipeline:
        from signcam.pipeline import Engine

        engine = Engine.from_model(args.model, scan_every=args.scan_every, threads=args.threads,
                                   detector=args.detector, coarse_detector=args.coarse_detector)
        p = report["pipeline"] = bench_pipeline(args.source, engine, args.frames, args.loop)
        print(f"pipeline on {p['source']} ({p['frame_size'][0]}x{p['frame_size'][1]}, {p['frames']} frames): "
              f"{p['pipeline_fps']:.1f} fps end to end, decode alone {p['decode_only_fps']:.1f} fps "
              f"(ratio {p['ratio_to_decode']:.2f})", file=out)
        if p["frames"] < args.frames:  # a still, or a short clip: its first frames cost more than the rest
            print(f"  note: {args.source} has only {p['frames']} frame(s); --loop repeats them to time "
                  f"{args.frames}", file=out)
        if p["scan_every"] > 1:
            print(f"  whole frames searched: {p['frames_searched_whole']} of {p['frames']} (every {p['scan_every']}, "
                  "and after losing a sign); the rest only around the signs being tracked", file=out)
        print(f"  frame latency {p['latency_ms_median']:.1f} ms median, {p['latency_ms_p95']:.1f} ms p95", file=out)
        print("  stage medians (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in p["stage_ms_median"].items()), file=out)
        step = max(len(p["rss_mb"]) // 10, 1)
        shown = p["rss_mb"][::step] + ([p["rss_mb"][-1]] if (len(p["rss_mb"]) - 1) % step else [])
        print("  memory (RSS, MB) after N frames: " + (", ".join(f"{n}: {mb:.0f}" for n, mb in shown) or
                                                      "not measured on this system (no /proc)"), file=out)
    return report
