"""Find, classify and track road signs in a video, camera, stream, image, folder or glob of images.

Runs without a window: results go to JSON Lines (``--json``, one object per frame, box
coordinates in pixels of the original frame), the list of signs passed (``--events``, CSV or
JSON, as the app exports it) and an annotated video or folder of images (``--output``); a
progress bar and a one-line summary go to standard error.
Unreadable images in a folder are skipped with a warning (exit status 1); a missing or
unreadable input (or a folder with no readable image) exits with status 2; a video that breaks
off half-way keeps everything processed until then, reports where it stopped and exits with
status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from signcam.cli import add_engine_arguments, positive_int, probability, silence_stdout
from signcam.errors import SignCamError, Terminated
from signcam.files import check_writable, output_folder, refuse_overwriting, refuse_shared_outputs
from signcam.pipeline import Engine, FrameResult, model_files
from signcam.recognizer import DEFAULT_CONF
from signcam.road import SignEvent
from signcam.sinks import VIDEO_CODECS, ImageFolderSink, JSONLinesSink, VideoSink, check_events_path, write_events
from signcam.sources import FrameSource, open_images, open_source

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="+", metavar="SOURCE",
                        help="camera index (0) or /dev/videoN, rtsp/http URL, video file, image, folder or glob of "
                             "images ('scenes/*.jpg', or several image files), or 'demo' for the built-in clip")
    parser.add_argument("--json", metavar="FILE", help="write one JSON object per processed frame (JSON Lines); "
                                                       "'-' for standard output")
    parser.add_argument("--output", metavar="PATH",
                        help=f"write annotated frames: a video if PATH ends in {'/'.join(VIDEO_CODECS)} (image "
                             "inputs become one image per second), otherwise a folder of JPEG images named after "
                             "each input image, or 000123.jpg by frame index for videos and cameras")
    parser.add_argument("--events", metavar="FILE",
                        help="also write the signs passed, one row each when first confirmed (for images: every "
                             "sign found), to a .csv or .json file; '-' for CSV on standard output")
    parser.add_argument("--conf", type=probability, metavar="X",
                        help="accept a sign when its class probability is at least X "
                             f"(default: {DEFAULT_CONF}, chosen on the tune scenes)")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after processing N frames")
    parser.add_argument("--stride", type=positive_int, default=1, metavar="N", help="process every Nth frame")
    add_engine_arguments(parser)
    parser.add_argument("--no-track", action="store_true",
                        help="report each frame's detections without confirming them over frames (always the "
                             "case for images, which are unrelated stills)")


def _open(specs: list[str]) -> FrameSource:
    """One source as typed, or several image files (an unquoted glob the shell expanded)."""
    return open_source(specs[0]) if len(specs) == 1 else open_images(specs)


def _expected_frames(source: FrameSource, args: argparse.Namespace) -> int | None:
    total = None if source.frame_count is None else math.ceil(source.frame_count / args.stride)
    if args.max_frames is not None:
        total = args.max_frames if total is None else min(total, args.max_frames)
    return total


class _AnnotatedOutput:
    """``--output``: draws each result and writes it to a video or an image folder."""

    def __init__(self, path: str, fps: float) -> None:
        from signcam.overlay import draw_overlay  # drawing code is only needed with --output

        self._draw = draw_overlay
        self._sink = VideoSink(path, fps) if _is_video(path) else ImageFolderSink(path)

    def write(self, result: FrameResult, source: FrameSource) -> None:
        frame = result.frame
        image = self._draw(frame.image, result.detections, result.speed_limit)
        if isinstance(self._sink, VideoSink):  # a live source drops frames: its video is paced by their times
            self._sink.write(image, frame.time_ms if source.is_live else None)
        else:
            self._sink.write(image, f"{Path(frame.source).stem if source.is_stills else f'{frame.index:06d}'}.jpg")

    def __enter__(self) -> _AnnotatedOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sink.__exit__(*exc_info)


def _is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_CODECS


def _writes_image_folder(output: str | None) -> bool:
    """True when ``--output`` names a folder of annotated images rather than a video."""
    return output is not None and not _is_video(output)


def _refuse_conflicting_outputs(args: argparse.Namespace, source: FrameSource) -> None:
    """Refuse outputs that would overwrite what the run reads (the input, the models) or each other, or that
    the options leave empty."""
    refuse_shared_outputs({"--json": args.json, "--events": args.events, "--output": args.output})
    if args.json == "-" and args.events == "-":
        raise SignCamError("--json - and --events - would mix two formats on standard output: write one to a file")
    if args.events and args.no_track and source.trackable:
        raise SignCamError("--events lists each sign once, when its track is confirmed, and --no-track leaves no "
                           "tracks (--json has every frame's detections)")
    if args.output == "-":
        raise SignCamError("--output - is not standard output: name a video file or a folder for annotated images")
    read = [*source.files, *model_files(args.model, args.detector, args.coarse_detector)]
    folder = _writes_image_folder(args.output)
    if args.output:
        # Annotated stills are named after their images: never into the folder of those images.
        refuse_overwriting("--output", args.output, read)
        refuse_overwriting("--output", args.output, source.files, folder=folder and source.is_stills)
    for flag, path in (("--json", args.json), ("--events", args.events)):
        if path and path != "-":
            refuse_overwriting(flag, path, read)
            if folder and Path(path).suffix.lower() == ".jpg" and \
                    Path(path).expanduser().resolve().parent == Path(args.output).expanduser().resolve():
                raise SignCamError(f"{flag} {path} could be written over by an annotated image in --output "
                                   f"{args.output}: name it otherwise")


def _image_folder(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The folder of annotated images, made for the run (so that ``--json`` or ``--events`` may go inside it)
    and gone again if the run writes nothing into it; nothing to make for a video or no ``--output``."""
    return output_folder(args.output) if _writes_image_folder(args.output) else contextlib.nullcontext()


def _check_outputs(args: argparse.Namespace) -> None:
    """Check now, not after the first frame, that the outputs can be written, and say where an ``--output``
    that is not a video goes."""
    if args.output and not _writes_image_folder(args.output):
        check_writable(args.output)
    if args.json and args.json != "-":
        check_writable(args.json)
    if args.events:
        check_events_path(args.events)
    if _writes_image_folder(args.output) and Path(args.output).suffix:
        print(f"signcam: note: {args.output} is not a video ({', '.join(VIDEO_CODECS)}): "
              "writing annotated images into that folder", file=sys.stderr)


def _summary(counts: Counter[str], track: bool) -> str:
    """``signs confirmed: 3 (Stop, Speed limit 50 x2)``: what was found, by class, most first."""
    total = sum(counts.values())
    names = ", ".join(label if n == 1 else f"{label} x{n}" for label, n in counts.most_common())
    return f"signs {'confirmed' if track else 'found'}: {total}" + (f" ({names})" if names else "")


def _warn_skipped(source: FrameSource, already: int, bar: tqdm) -> int:
    """Print the source's skipped items not reported yet (above the progress bar); returns how many there are."""
    for message in source.failures[already:]:
        bar.write(f"signcam: warning: skipped: {message}", file=sys.stderr)
    return len(source.failures)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, ``kill``, systemd, docker) stops the run as Ctrl-C does: outputs closed, video playable."""
    def interrupt(_signum: int, _frame: object) -> None:
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Run:
    """What a run over the source did.

    Args:
        started: ``time.perf_counter()`` when it began.
        processed: Frames processed, each counted once its ``--json`` line is written.
        events: The signs passed (for stills: every sign found).
        failure: What stopped it early (the input broke off, an output failed, Ctrl-C), to report
            after the summary; ``None`` when it ran to the end.
    """

    started: float
    processed: int = 0
    events: list[SignEvent] = field(default_factory=list)
    failure: BaseException | None = None


def _process(source: FrameSource, engine: Engine, args: argparse.Namespace) -> _Run:
    """Run ``engine`` over every ``--stride``th frame of ``source``, writing each result to the outputs as it
    comes; a break-off ends the run with everything processed until then written."""
    run = _Run(started=time.perf_counter())
    warned = 0
    with contextlib.ExitStack() as outputs:
        json_sink = outputs.enter_context(JSONLinesSink(args.json)) if args.json else None
        annotated = outputs.enter_context(_AnnotatedOutput(args.output, source.fps / args.stride)) \
            if args.output else None
        bar = outputs.enter_context(tqdm(total=_expected_frames(source, args), unit="frame", file=sys.stderr,
                                         disable=None, dynamic_ncols=True, desc=source.description))
        try:
            for frame in source:
                warned = _warn_skipped(source, warned, bar)
                result = engine.process(frame)
                if json_sink is not None:
                    json_sink.append(result)
                # Counted once its line is written: a stop after this point still counts it.
                run.processed += 1
                run.events += result.events  # stills: each detection
                if annotated is not None:
                    annotated.write(result, source)
                bar.update()
                if run.processed == args.max_frames:
                    break
                source.skip(args.stride - 1)  # a video passes over frames without decoding them whole
        except BrokenPipeError:
            # The reader of `--json -` went away (`| head`): stop as if --max-frames was reached.
            silence_stdout()
        except (SignCamError, KeyboardInterrupt) as exc:
            run.failure = exc
        _warn_skipped(source, warned, bar)
        try:
            outputs.close()  # the annotated video is checked as it is finished: a full disk shows only here
        except SignCamError as exc:
            if run.failure is not None:  # both are worth knowing: this one now, the first after the summary
                print(f"signcam: error: {exc}", file=sys.stderr)
            else:
                run.failure = exc
    return run


def _print_summary(run: _Run, source: FrameSource, track: bool, args: argparse.Namespace) -> None:
    """One line on standard error: frames processed, how fast, and the signs found; a hint when nothing is kept."""
    elapsed = max(time.perf_counter() - run.started, 1e-9)
    unit = ("image" if source.is_stills else "frame") + ("" if run.processed == 1 else "s")
    print(f"signcam: {run.processed} {unit} in {elapsed:.1f} s ({run.processed / elapsed:.1f} fps), "
          f"{_summary(Counter(event.label for event in run.events), track)}", file=sys.stderr)
    if not (args.json or args.output or args.events):
        print("signcam: add --json, --events or --output FILE to keep where each sign was found", file=sys.stderr)


def _exit_status(source: FrameSource, processed: int) -> int:
    """0, or with images that could not be read: 1 when some were processed, 2 when none (an unreadable input)."""
    if not source.failures:
        return 0
    print(f"signcam: error: {len(source.failures)} of {source.frame_count} images could not be read",
          file=sys.stderr)
    return 2 if processed == 0 else 1


def main(args: argparse.Namespace) -> int:
    """Run detection over the whole source; 0 on success, 1 if some images were skipped, 2 if none could be read."""
    with _terminate_as_interrupt(), _open(args.source) as source:
        _refuse_conflicting_outputs(args, source)
        # A bad model is refused before any output is made.
        engine = Engine.from_model(args.model, args.conf, track=source.trackable and not args.no_track,
                                   scan_every=args.scan_every, detector=args.detector,
                                   coarse_detector=args.coarse_detector)
        with _image_folder(args):
            _check_outputs(args)
            run = _process(source, engine, args)
            if args.events:  # after a break-off too: the signs passed until then
                write_events(run.events, args.events)
    _print_summary(run, source, engine.track, args)
    if run.failure is not None:
        raise run.failure  # everything processed so far is written and summed up
    return _exit_status(source, run.processed)
