"""Turn still road scenes into a video clip for benchmarks and for trying the app.

Each image is held for ``--hold`` frames with a slow zoom towards its centre, so the
tracker sees signs that grow as if the car were driving. Images are never copied into
the repository: write the clip somewhere outside it.

Example:
    python benchmarks/make_clip.py ../shared/data/gtsdb-train /tmp/gtsdb-1360x800.mp4 --first 450 --count 40
    python benchmarks/make_clip.py ../shared/data/gtsdb-train /tmp/gtsdb-vp9.webm --first 450 --count 12 \
        --size 1280x720 --fourcc VP90     # encodes at about 2 frames/s
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from signcam.cli import DocstringHelpFormatter, non_negative_int, positive_float, positive_int
from signcam.errors import SignCamError, SourceError
from signcam.sinks import VideoSink
from signcam.sources import read_image


def zoom_frames(image: np.ndarray, hold: int, zoom: float):
    """``hold`` frames of ``image`` zooming from 1 to ``zoom`` about its centre: (frame, 2x3 matrix)."""
    h, w = image.shape[:2]
    for factor in np.linspace(1.0, zoom, hold):
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, factor)
        yield cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR), matrix


def frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as an argparse type, e.g. ``1920x1080`` -> (1920, 1080)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("at least 16x16")
    return width, height


def fourcc(text: str) -> str:
    """A codec's four-character code as an argparse type, e.g. ``VP90``."""
    if len(text) != 4:
        raise argparse.ArgumentTypeError(f"a codec's code has four characters (VP90, mp4v, MJPG), not {text!r}")
    return text


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` cut about its centre to the aspect ratio of ``size`` (width, height), then resized to it."""
    h, w = image.shape[:2]
    keep_w, keep_h = min(w, round(h * size[0] / size[1])), min(h, round(w * size[1] / size[0]))
    x0, y0 = (w - keep_w) // 2, (h - keep_h) // 2
    shrinking = keep_w > size[0]
    return cv2.resize(image[y0:y0 + keep_h, x0:x0 + keep_w], size,
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder of images (e.g. a GTSDB folder)")
    parser.add_argument("output", type=Path, help="video to write (.mp4 or .avi)")
    parser.add_argument("--first", type=non_negative_int, default=0, help="index of the first image, in name order")
    parser.add_argument("--count", type=positive_int, default=40, help="how many images")
    parser.add_argument("--hold", type=positive_int, default=25, help="frames per image")
    parser.add_argument("--zoom", type=positive_float, default=1.15, help="zoom reached at the end of each image")
    parser.add_argument("--fps", type=positive_float, default=25.0)
    parser.add_argument("--fourcc", type=fourcc,
                        help="codec, e.g. VP90 for a .webm that costs more to decode than mp4v "
                             "(default: from the suffix: mp4v, or MJPG for .avi)")
    parser.add_argument("--size", type=frame_size, metavar="WxH",
                        help="frame size, e.g. 1920x1080 (default: the images' own); each image is cut to "
                             "this aspect ratio about its centre, then resized")
    args = parser.parse_args(argv)

    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".png", ".ppm"))
    images = images[args.first:args.first + args.count]
    if not images:
        print(f"no images in {args.folder} from index {args.first}", file=sys.stderr)
        return 2
    try:
        written, size = write_clip(images, args)
    except SignCamError as exc:  # a codec the writer cannot open, a full disk
        print(f"make_clip: error: {exc}", file=sys.stderr)
        return 2
    if not written:
        print(f"none of the {len(images)} images could be read", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {written} images x {args.hold} frames, {size[0]}x{size[1]}")
    return 0


def write_clip(images: list[Path], args: argparse.Namespace) -> tuple[int, tuple[int, int] | None]:
    """Write the clip; returns how many images it holds and its frame size."""
    written = 0
    with VideoSink(args.output, args.fps, fourcc=args.fourcc) as sink:
        for path in images:
            try:
                image = read_image(path)
            except SourceError as exc:
                print(f"skipping: {exc}", file=sys.stderr)
                continue
            if args.size:
                image = fit(image, args.size)
            for frame, _matrix in zoom_frames(image, args.hold, args.zoom):
                sink.write(frame)
            written += 1
    return written, sink.size


if __name__ == "__main__":
    sys.exit(main())
