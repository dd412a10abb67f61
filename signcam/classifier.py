"""Classify sign crops with the shipped ONNX model (no torch at run time).

Example:
    >>> clf = Classifier()                      # assets/signnet.onnx
    >>> probs = clf.predict_boxes(frame, [(10, 10, 50, 50)])
    >>> probs.shape
    (1, 44)
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from signcam.classes import NOT_A_SIGN, NUM_SIGN_CLASSES
from signcam.errors import ModelError, first_line
from signcam.onnx_session import default_threads, open_onnx

__all__ = ["Classifier", "ModelInfo", "DEFAULT_MODEL", "CROP_MARGIN", "READ_ZOOMS", "REREAD_BELOW", "crop_patches",
           "zoom_patches", "read_at_zooms", "best_signs", "METADATA_KEY", "BATCH"]

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "signnet.onnx"
#: GTSRB crops keep about 17 % of the sign's width as margin on each side (measured on
#: the training ROIs); crops cut from a detection box are framed the same way.
CROP_MARGIN = 0.17
#: A whole image given as a sign crop is read as it comes and, when that reading is unsure
#: (REREAD_BELOW), 1.1 times closer too (4.5 % cut off each side), the two readings averaged.
#: GTSRB-framed crops are read better closer: on the validation tracks every one of ten trained
#: networks scored higher at 1.1 than as framed (`signcam-train evaluate` prints the scan), and
#: the average keeps that gain. Crops cut tight to the sign lose their rim when read closer; the
#: average loses little of them. Crops cut around a detection box keep CROP_MARGIN and are read
#: once: there closer gained nothing.
READ_ZOOMS = (1.0, 1.1)
#: Only a crop whose first reading is unsure is read at the other zooms: one whose top probability
#: (of all 44 outputs) is below this, the app's accept threshold. On the validation tracks, from 0.7
#: on every crop got the class that reading every crop at every zoom gives, framed as it comes and
#: 1.3 times closer alike, while 2.5 % and 14 % of them were read again (docs/experiments.md).
REREAD_BELOW = 0.7
METADATA_KEY = "signcam"
#: Crops a one-thread session reads in one call when :meth:`Classifier.predict` reads more than
#: this side by side: small enough that the cores finish together, large enough to fill a core.
BATCH = 32


def crop_patches(image: np.ndarray, boxes: Sequence[Sequence[float]], size: int = 32,
                 margin: float = CROP_MARGIN) -> np.ndarray:
    """Cut ``size`` x ``size`` patches around boxes, framed like GTSRB crops.

    Args:
        image: H x W x 3 uint8 frame (BGR).
        boxes: ``(x1, y1, x2, y2)`` per sign, pixel coordinates (x2, y2 inclusive).
        size: Side of the square output patches.
        margin: Context kept on each side, as a fraction of the box's width/height.

    Returns:
        N x size x size x 3 uint8 patches; parts outside the frame repeat its border.
    """
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    height, width = image.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        left, right = int(round(x1 - margin * bw)), int(round(x2 + margin * bw)) + 1
        top, bottom = int(round(y1 - margin * bh)), int(round(y2 + margin * bh)) + 1
        patch = image[max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
        pads = (max(-top, 0), max(bottom - height, 0), max(-left, 0), max(right - width, 0))
        if any(pads) and patch.size:
            patch = cv2.copyMakeBorder(patch, *pads, cv2.BORDER_REPLICATE)
        if not patch.size:
            out[i] = 0
            continue
        shrink = patch.shape[0] > size and patch.shape[1] > size
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out


def zoom_patches(patches: np.ndarray, zoom: float) -> np.ndarray:
    """Enlarge N x S x S x 3 patches about their centre by ``zoom``, keeping their size.

    Sub-pixel exact: cutting whole pixels off a 32 px patch could only zoom in steps of about 6 %.
    Below 1 the patch's border is repeated outwards.
    """
    if zoom == 1 or not len(patches):
        return patches
    size = patches.shape[1]
    centre = (size - 1) / 2
    warp = np.float32([[zoom, 0, centre * (1 - zoom)], [0, zoom, centre * (1 - zoom)]])
    return np.stack([cv2.warpAffine(p, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for p in patches])


def read_at_zooms(read: Callable[[np.ndarray], np.ndarray], patches: np.ndarray, zooms: Sequence[float],
                  reread_below: float = REREAD_BELOW) -> np.ndarray:
    """Probabilities of whole-crop patches read at ``zooms[0]``, and the unsure ones at every zoom.

    Args:
        read: N x S x S x 3 uint8 patches to N x C probabilities (a network).
        patches: The patches, one whole crop each.
        zooms: How much closer each is read (:func:`zoom_patches`); the first for every patch.
        reread_below: A patch whose first reading's top probability is below this is read at the
            other zooms too, and its readings averaged; 1 reads every patch at every zoom.
    """
    probs = read(zoom_patches(patches, zooms[0]))
    if len(zooms) > 1:
        unsure = np.arange(len(probs)) if reread_below >= 1 else np.flatnonzero(probs.max(1) < reread_below)
        if len(unsure):
            again = [read(zoom_patches(patches[unsure], zoom)) for zoom in zooms[1:]]
            probs[unsure] = np.mean([probs[unsure], *again], axis=0)
    return probs


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself (its embedded metadata)."""

    class_names: list[str]
    input_size: int = 32
    channel_order: str = "BGR"
    crop_margin: float = CROP_MARGIN
    read_zooms: tuple[float, ...] = (1.0,)  # files from before they were recorded: as framed
    reread_below: float = REREAD_BELOW
    extra: dict[str, Any] = field(default_factory=dict)


def best_signs(probs: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What N x 44 probabilities say, row by row, under the rule both detection and ``classify`` use.

    Returns:
        ``(class_ids, scores, not_a_sign, accepted)``: the best of the 43 signs and its
        probability; whether "not a sign" is the most likely output; and whether the sign is
        accepted (it is not, and its probability is at least ``conf``).
    """
    class_ids = probs[:, :NOT_A_SIGN].argmax(1)
    scores = probs[np.arange(len(probs)), class_ids]
    not_a_sign = probs.argmax(1) == NOT_A_SIGN
    return class_ids, scores, not_a_sign, ~not_a_sign & (scores >= conf)


class Classifier:
    """The 44-way sign classifier (43 signs + "not a sign") on ONNX Runtime.

    Up to :data:`BATCH` crops are read by one session whose ``threads`` share each operator. More
    are read side by side in batches of :data:`BATCH`, each core taking the next batch as it
    finishes one, with a one-thread session of its own: no core waits for the other between
    operators (docs/experiments.md, "Batches side by side").

    Args:
        path: ONNX file written by ``signcam-train export``.
        threads: Cores to use; default: all cores, at most 4.
        spin: Let idle threads spin between batches (see :func:`signcam.onnx_session.open_onnx`).
        side_by_side: Read more than :data:`BATCH` crops side by side as above; False reads any
            number in one call of the shared session, as signcam did before.

    Raises:
        ModelError: the file is missing, corrupt, or carries no signcam metadata.
    """

    def __init__(self, path: str | os.PathLike | None = None, threads: int | None = None, spin: bool = True,
                 side_by_side: bool = True) -> None:
        self.path = Path(path) if path is not None else DEFAULT_MODEL
        self.threads = threads or default_threads()
        self.side_by_side = side_by_side and self.threads > 1
        self._session, raw = open_onnx(self.path, "model", METADATA_KEY, self.threads, spin,
                                       required=("class_names", "input_size"))
        self._one_thread_sessions: list[Any] = []  # opened on the first read of more than a batch
        self.info = ModelInfo(class_names=raw["class_names"], input_size=raw["input_size"],
                              channel_order=raw.get("channel_order", "BGR"),
                              crop_margin=raw.get("crop_margin", CROP_MARGIN),
                              read_zooms=tuple(raw.get("read_zooms", (1.0,))),
                              reread_below=raw.get("reread_below", REREAD_BELOW), extra=raw)
        if len(self.info.class_names) != NUM_SIGN_CLASSES:
            raise ModelError(f"{self.path} has {len(self.info.class_names)} classes, expected {NUM_SIGN_CLASSES}")
        # The runtime feeds BGR crops and reads "not a sign" from the last output: a file that says
        # otherwise would be read wrong without a word.
        if self.info.channel_order != "BGR" or raw.get("reject_index", NOT_A_SIGN) != NOT_A_SIGN:
            raise ModelError(f"{self.path} expects {self.info.channel_order} crops with 'not a sign' at output "
                             f"{raw.get('reject_index')}; signcam feeds BGR and reads it at {NOT_A_SIGN}")
        self._input = self._session.get_inputs()[0].name
        self._check_outputs()

    def _check_outputs(self) -> None:
        """Run one blank crop: a file whose network does not match its metadata fails here, not mid-run."""
        size = self.info.input_size
        try:
            probs = self.predict(np.zeros((1, size, size, 3), np.uint8))
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelError(f"{self.path} does not take the {size}x{size} crops its metadata names: "
                             f"{first_line(exc)}") from None
        if probs.shape != (1, NOT_A_SIGN + 1):
            raise ModelError(f"{self.path} gives {probs.shape[-1]} outputs for a crop; a signcam model gives "
                             f"{NOT_A_SIGN + 1} probabilities")
        if not np.isfinite(probs).all():
            raise ModelError(f"{self.path} gives probabilities that are not numbers (NaN or infinite)")

    def predict(self, patches: np.ndarray) -> np.ndarray:
        """Class probabilities (N x 44, the last column "not a sign") of N x S x S x 3 BGR patches."""
        if len(patches) == 0:
            return np.zeros((0, NOT_A_SIGN + 1), np.float32)
        if len(patches) <= BATCH or not self.side_by_side:
            return self._run(self._session, patches)
        return self._read_side_by_side(patches)

    def _run(self, session: Any, patches: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32)
        return session.run(None, {self._input: batch})[0]

    def _read_side_by_side(self, patches: np.ndarray) -> np.ndarray:
        """Batches of :data:`BATCH` patches, each core taking the next as it finishes one."""
        if not self._one_thread_sessions:
            # One thread each: ONNX Runtime keeps no thread pool for them, so there is nothing to spin.
            self._one_thread_sessions = [open_onnx(self.path, "model", METADATA_KEY, 1, spin=False)[0]
                                         for _ in range(self.threads)]
        starts: queue.SimpleQueue[int] = queue.SimpleQueue()
        for start in range(0, len(patches), BATCH):
            starts.put(start)
        probs = np.empty((len(patches), NOT_A_SIGN + 1), np.float32)

        def work(session: Any) -> None:
            while True:
                try:
                    start = starts.get_nowait()
                except queue.Empty:
                    return
                probs[start:start + BATCH] = self._run(session, patches[start:start + BATCH])

        with ThreadPoolExecutor(len(self._one_thread_sessions), thread_name_prefix="signnet") as pool:
            for done in [pool.submit(work, session) for session in self._one_thread_sessions]:
                done.result()  # a failed batch raises here
        return probs

    def prepare(self, image: np.ndarray, boxes: Sequence[Sequence[float]] | None = None) -> np.ndarray:
        """Patches for :meth:`predict`: the whole image, or one per box (with the model's ``crop_margin``)."""
        size = self.info.input_size
        if boxes is None:
            h, w = image.shape[:2]
            return crop_patches(image, [(0, 0, w - 1, h - 1)], size, margin=0.0)
        return crop_patches(image, boxes, size, self.info.crop_margin)

    def predict_crops(self, images: Sequence[np.ndarray], zooms: Sequence[float] | None = None,
                      reread_below: float | None = None) -> np.ndarray:
        """Class probabilities (N x 44) of whole images, each one sign crop of any size (see :meth:`read_crops`)."""
        if not len(images):
            return self.predict(np.zeros((0, self.info.input_size, self.info.input_size, 3), np.uint8))
        return self.read_crops(np.concatenate([self.prepare(image) for image in images]), zooms, reread_below)

    def read_crops(self, patches: np.ndarray, zooms: Sequence[float] | None = None,
                   reread_below: float | None = None) -> np.ndarray:
        """Class probabilities of patches :meth:`prepare` cut from whole crops, read as ``signcam classify`` reads.

        Each is read at the first of ``zooms`` and, when that reading is unsure (its top probability
        below ``reread_below``), at the others too, its readings averaged (:func:`read_at_zooms`).
        Both default to the model's ``read_zooms`` and ``reread_below``.
        """
        zooms = self.info.read_zooms if zooms is None else zooms
        reread_below = self.info.reread_below if reread_below is None else reread_below
        return read_at_zooms(self.predict, patches, zooms, reread_below)

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """Class probabilities of the signs boxed in a frame."""
        return self.predict(self.prepare(image, boxes))
