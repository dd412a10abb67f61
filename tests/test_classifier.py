"""The ONNX classifier runtime: crop framing, and one clear error for every bad model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from signcam.classes import CLASSES, NOT_A_SIGN
from signcam.classifier import (
    BATCH,
    CROP_MARGIN,
    DEFAULT_MODEL,
    METADATA_KEY,
    REREAD_BELOW,
    Classifier,
    best_signs,
    crop_patches,
    read_at_zooms,
    zoom_patches,
)
from signcam.errors import ModelError, SignCamError

WHITE_SQUARE = (40, 40, 59, 59)


@pytest.fixture
def frame() -> np.ndarray:
    """A black 100 x 100 frame with a white 20 x 20 square at WHITE_SQUARE."""
    image = np.zeros((100, 100, 3), np.uint8)
    x1, y1, x2, y2 = WHITE_SQUARE
    image[y1:y2 + 1, x1:x2 + 1] = 255
    return image


@pytest.mark.parametrize("size", [32, 48])
def test_crop_without_margin_is_the_box(frame: np.ndarray, size: int) -> None:
    patches = crop_patches(frame, [WHITE_SQUARE], size, margin=0.0)
    assert patches.shape == (1, size, size, 3) and patches.dtype == np.uint8
    assert (patches == 255).all()


def test_crop_keeps_a_gtsrb_like_margin(frame: np.ndarray) -> None:
    patch = crop_patches(frame, [WHITE_SQUARE])[0]
    assert patch[0, 0].max() == 0 and patch[16, 16].min() == 255
    # The 20 px sign plus CROP_MARGIN of its width on each side is scaled to 32 px.
    expected = 32 * 20 / (20 * (1 + 2 * CROP_MARGIN))
    white = (patch[16, :, 0] > 127).sum()
    assert abs(white - expected) <= 1.5


def test_a_tall_box_keeps_its_margin_in_proportion_to_each_side() -> None:
    """The finder's boxes are not square: the margin across is a share of the width, up and down of the height."""
    image = np.zeros((120, 120, 3), np.uint8)
    image[20:60, 40:60] = 255  # 20 wide, 40 tall
    patch = crop_patches(image, [(40, 20, 59, 59)])[0]
    across, down = (patch[16, :, 0] > 127).sum(), (patch[:, 16, 0] > 127).sum()
    assert abs(across - 32 / (1 + 2 * CROP_MARGIN)) <= 1.5 and abs(down - 32 / (1 + 2 * CROP_MARGIN)) <= 1.5


def test_a_sign_below_a_low_threshold_is_still_turned_down_where_not_a_sign_leads() -> None:
    probs = np.zeros((2, NOT_A_SIGN + 1), np.float32)
    probs[0, [14, NOT_A_SIGN]] = 0.35, 0.6   # "not a sign" most likely
    probs[1, [14, NOT_A_SIGN]] = 0.35, 0.3   # the sign most likely
    class_ids, scores, not_a_sign, accepted = best_signs(probs, conf=0.3)
    assert class_ids.tolist() == [14, 14] and not_a_sign.tolist() == [True, False]
    assert accepted.tolist() == [False, True]


@pytest.mark.parametrize("zoom", [1.1, 1.25, 1.6])
def test_zoom_enlarges_about_the_centre(frame: np.ndarray, zoom: float) -> None:
    patches = crop_patches(frame, [(30, 30, 69, 69)], margin=0.0)  # the 20 px square is 16 px of 32, centred
    zoomed = zoom_patches(patches, zoom)
    assert zoomed.shape == patches.shape and zoomed.dtype == np.uint8
    white = (zoomed[0, 16, :, 0] > 127).nonzero()[0]
    assert abs(len(white) - 16 * zoom) <= 1 and abs((white[0] + white[-1]) / 2 - 15.5) <= 0.5
    np.testing.assert_array_equal(zoom_patches(patches, 1.0), patches)


@pytest.mark.parametrize("box", [(-10, -10, 19, 19), (80, 90, 119, 129), (-50, 20, 150, 60)],
                         ids=["top-left", "bottom-right", "wider-than-frame"])
def test_crop_outside_the_frame_repeats_its_border(box: tuple[int, int, int, int]) -> None:
    image = np.empty((100, 100, 3), np.uint8)
    image[:] = (10, 20, 30)
    patch = crop_patches(image, [box])[0]
    assert (patch == (10, 20, 30)).all(), "no black padding: the border is repeated"


def test_crop_entirely_outside_the_frame_is_blank(frame: np.ndarray) -> None:
    patches = crop_patches(frame, [(300, 300, 340, 340), WHITE_SQUARE])
    assert (patches[0] == 0).all()
    assert patches[1, 16, 16].min() == 255


class _Network:
    """Reads a uniform patch of grey level g as sure of class g when g is even, unsure when odd; each
    call after the first reads it as sure of class g + 1. Records the grey levels of every call."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        levels = [int(p[0, 0, 0]) for p in patches]
        again = bool(self.calls)
        self.calls.append(levels)
        probs = np.full((len(levels), NOT_A_SIGN + 1), 0.01, np.float32)
        for row, level in enumerate(levels):
            probs[row, level + again] = 0.9 if again or level % 2 == 0 else 0.5
        return probs


@pytest.mark.parametrize("reread_below", [0.6, REREAD_BELOW, 0.89])
def test_only_unsure_crops_are_read_again_and_averaged(reread_below: float) -> None:
    patches = np.stack([np.full((32, 32, 3), level, np.uint8) for level in (2, 3, 4, 5)])
    network = _Network()
    probs = read_at_zooms(network, patches, (1.0, 1.1, 1.2), reread_below)
    assert network.calls == [[2, 3, 4, 5], [3, 5], [3, 5]]
    for row, level in ((0, 2), (2, 4)):  # sure: the first reading, untouched
        assert probs[row, level] == pytest.approx(0.9) and probs[row, level + 1] == pytest.approx(0.01)
    for row, level in ((1, 3), (3, 5)):
        assert probs[row, level] == pytest.approx((0.5 + 0.01 + 0.01) / 3)
        assert probs[row, level + 1] == pytest.approx((0.01 + 0.9 + 0.9) / 3)


def test_reading_again_below_one_reads_every_crop_and_one_zoom_reads_once() -> None:
    patches = np.stack([np.full((32, 32, 3), level, np.uint8) for level in (2, 3)])
    always, once = _Network(), _Network()
    read_at_zooms(always, patches, (1.0, 1.1), 1.0)
    read_at_zooms(once, patches, (1.1,), 0.0)
    assert always.calls == [[2, 3], [2, 3]] and once.calls == [[2, 3]]
    certain = []  # a reading of exactly 1 (float32 softmax can round to it) is read again too

    def sure_of_class_0(batch: np.ndarray) -> np.ndarray:
        certain.append(len(batch))
        return np.eye(NOT_A_SIGN + 1, dtype=np.float32)[[0] * len(batch)]

    read_at_zooms(sure_of_class_0, patches, (1.0, 1.1), 1.0)
    assert certain == [2, 2]


def test_no_boxes_no_patches(frame: np.ndarray) -> None:
    assert crop_patches(frame, []).shape == (0, 32, 32, 3)


def _identity_onnx(path: Path, metadata: dict | None) -> Path:
    """A valid ONNX file (image -> probs), with or without signcam metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["probs"])], "identity",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 32, 32])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 3, 32, 32])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if metadata is not None:
        helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    onnx.save(model, path)
    return path


SIGNCAM_META = {"class_names": [c.name for c in CLASSES], "input_size": 32}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "absent.onnx", "model file not found"),
    (lambda d: d, "model .* is a folder: name the .onnx file in it"),
    (lambda d: _write(d / "noise.onnx", np.random.default_rng(0).bytes(4096)), "cannot load model"),
    (lambda d: _write(d / "empty.onnx", b""), "cannot load model"),
    (lambda d: _identity_onnx(d / "plain.onnx", None), "not a signcam model"),
    (lambda d: _identity_onnx(d / "ten.onnx", {"class_names": [str(i) for i in range(10)], "input_size": 32}),
     "has 10 classes"),
    (lambda d: _identity_onnx(d / "rgb.onnx", {**SIGNCAM_META, "channel_order": "RGB"}), "expects RGB crops"),
    (lambda d: _identity_onnx(d / "first.onnx", {**SIGNCAM_META, "reject_index": 0}), "'not a sign' at output 0"),
], ids=["missing", "directory", "random-bytes", "empty", "no-metadata", "wrong-classes", "rgb", "reject-first"])
def test_bad_model_file_is_one_clear_error(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ModelError, match=message) as error:
        Classifier(path)
    assert isinstance(error.value, SignCamError)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
def test_shipped_model_describes_itself_and_predicts(frame: np.ndarray) -> None:
    classifier = Classifier()
    info = classifier.info
    assert info.class_names == [c.name for c in CLASSES]
    assert (info.input_size, info.channel_order) == (32, "BGR")
    assert info.extra["reject_index"] == NOT_A_SIGN and info.extra["params"] > 0
    whole = classifier.prepare(frame)
    boxed = classifier.prepare(frame, [WHITE_SQUARE, (0, 0, 30, 30)])
    assert whole.shape == (1, 32, 32, 3) and boxed.shape == (2, 32, 32, 3)
    probs = classifier.predict(np.concatenate([whole, boxed]))
    assert probs.shape == (3, NOT_A_SIGN + 1) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(classifier.predict_boxes(frame, [WHITE_SQUARE]), probs[1:2])
    assert classifier.predict(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, NOT_A_SIGN + 1)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
def test_whole_crops_are_read_at_each_zoom_and_averaged(frame: np.ndarray) -> None:
    classifier = Classifier()
    assert classifier.info.reread_below == REREAD_BELOW  # the shipped file does not say: the runtime's
    crops = [frame, frame[30:70, 30:70], frame[::-1, ::2] // 2]
    patches = np.concatenate([classifier.prepare(crop) for crop in crops])
    first = classifier.predict(patches)
    np.testing.assert_allclose(classifier.predict_crops(crops, [1.0]), first)
    average = (first + classifier.predict(zoom_patches(patches, 1.3))) / 2
    np.testing.assert_allclose(classifier.predict_crops(crops, [1.0, 1.3], reread_below=1), average, rtol=1e-6)
    between = float(np.sort(first.max(1))[1])  # one crop's first reading is below it, two are not
    unsure = first.max(1) < between
    assert unsure.sum() == 1 and between < 1
    np.testing.assert_allclose(classifier.predict_crops(crops, [1.0, 1.3], reread_below=between),
                               np.where(unsure[:, None], average, first), rtol=1e-6)
    assert classifier.predict_crops([]).shape == (0, NOT_A_SIGN + 1)


def _record_calls(classifier: Classifier, monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, int]]:
    """Each network call the classifier makes from now on, as (session, crops)."""
    calls: list[tuple[object, int]] = []
    run = classifier._run
    monkeypatch.setattr(classifier, "_run",
                        lambda session, batch: calls.append((session, len(batch))) or run(session, batch))
    return calls


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
def test_many_crops_are_read_side_by_side_in_batches_and_come_back_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    patches = np.random.default_rng(0).integers(0, 256, (5 * BATCH + 7, 32, 32, 3), dtype=np.uint8)
    expected = Classifier(threads=2, side_by_side=False).predict(patches)  # one call of one session
    classifier = Classifier(threads=2)
    calls = _record_calls(classifier, monkeypatch)
    np.testing.assert_allclose(classifier.predict(patches), expected, rtol=1e-5, atol=1e-7)
    one_thread = classifier._one_thread_sessions
    assert len(one_thread) == 2 and classifier._session not in one_thread
    assert all(session in one_thread and size <= BATCH for session, size in calls)
    assert sorted(size for _, size in calls) == [7] + [BATCH] * 5  # every crop read once
    calls.clear()
    classifier.predict(patches[:BATCH])  # one batch: the shared session, for the least latency
    assert calls == [(classifier._session, BATCH)]


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
@pytest.mark.parametrize("how", [{"threads": 1}, {"threads": 2, "side_by_side": False}])
def test_one_thread_or_side_by_side_off_reads_in_one_call(monkeypatch: pytest.MonkeyPatch, how: dict) -> None:
    classifier = Classifier(**how)
    calls = _record_calls(classifier, monkeypatch)
    classifier.predict(np.zeros((3 * BATCH, 32, 32, 3), np.uint8))
    assert calls == [(classifier._session, 3 * BATCH)] and not classifier._one_thread_sessions


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
def test_a_batch_that_fails_side_by_side_fails_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    classifier = Classifier(threads=2)
    run = classifier._run

    def fail_one(session, batch):
        if batch[0, 0, 0, 0] == 1:
            raise RuntimeError("batch 3 could not be read")
        return run(session, batch)

    monkeypatch.setattr(classifier, "_run", fail_one)
    patches = np.zeros((4 * BATCH, 32, 32, 3), np.uint8)
    patches[3 * BATCH] = 1
    with pytest.raises(RuntimeError, match="batch 3"):
        classifier.predict(patches)
