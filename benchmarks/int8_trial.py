"""Would 8-bit weights make the shipped networks faster on this CPU? Quantize both and time them.

Each network is quantized statically with ONNX Runtime's own tools (per-channel int8 weights,
uint8 activations, ``reduce_range`` as CPUs without VNNI need), calibrated on data neither
split below is scored on: GTSRB training tracks outside the validation split for the
classifier, GTSDB scenes 00000-00374 for the finder. It prints the classifier's validation
errors read as ``signcam classify`` reads, its throughput at batch 256, and the finder's time
on one 1360x800 scene, each float and 8-bit network timed in turn in the same process.

Needs the train extra (``onnx``) and GTSRB extracted into DATA_DIR (``signcam-train fit``'s layout).

Example:
    python benchmarks/int8_trial.py /tmp/data ../shared/data/gtsdb-train
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from signcam.classifier import DEFAULT_MODEL, Classifier
from signcam.cli import DocstringHelpFormatter, positive_int
from signcam.gtsdb import load_scenes, select_scenes
from signcam.onnx_session import open_onnx
from signcam.proposals import DEFAULT_DETECTOR, DETECTOR_METADATA_KEY, SignDetProposer
from training.data import load_gtsrb, split_by_track

VAL_EVERY = 6  # the split the shipped classifier was chosen on


class _Batches(CalibrationDataReader):
    def __init__(self, name: str, batches: list[np.ndarray]) -> None:
        self._feeds = iter({name: batch} for batch in batches)

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def quantize(source: Path, target: Path, batches: list[np.ndarray]) -> Path:
    """``source`` with int8 convolutions, calibrated on ``batches``, keeping its signcam metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        name = onnx.load(str(prepared)).graph.input[0].name
        quantize_static(str(prepared), str(target), _Batches(name, batches), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv", "Gemm"], per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile)
    model = onnx.load(str(target))
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.load(str(source)).metadata_props)
    onnx.save(model, str(target))
    return target


def timed(run, *args, repeats: int) -> float:
    """Median seconds of ``run(*args)`` after one call not counted."""
    run(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="folder GTSRB is extracted into")
    parser.add_argument("gtsdb_dir", type=Path, help="GTSDB training scenes with gt.txt")
    parser.add_argument("--rounds", type=positive_int, default=5, help="timing rounds, float and 8-bit in turn")
    args = parser.parse_args()

    train = load_gtsrb(args.data_dir, "train")
    fit, val = split_by_track(train, VAL_EVERY)
    rng = np.random.default_rng(0)
    calibration = fit.images[rng.choice(len(fit), 2048, replace=False)].numpy().astype(np.float32)
    fit_scenes = select_scenes(load_scenes(args.gtsdb_dir), "train")
    detector = SignDetProposer(DEFAULT_DETECTOR, levels=1)

    def finder_input(scene) -> np.ndarray:
        image = scene.read()
        h, w = image.shape[:2]
        small = cv2.resize(image, detector._input_size(w, h, detector.scale), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small.transpose(2, 0, 1)[None], np.float32)

    scene_batches = [finder_input(scene) for scene in fit_scenes[::15]]
    with tempfile.TemporaryDirectory() as tmp:
        classifier_int8 = quantize(DEFAULT_MODEL, Path(tmp) / "signnet-int8.onnx",
                                   [calibration[i:i + 256] for i in range(0, len(calibration), 256)])
        finder_int8 = quantize(DEFAULT_DETECTOR, Path(tmp) / "signdet-int8.onnx", scene_batches)
        classifiers = {"float": Classifier(DEFAULT_MODEL, threads=2), "int8": Classifier(classifier_int8, threads=2)}
        finders = {"float": open_onnx(DEFAULT_DETECTOR, "detector", DETECTOR_METADATA_KEY, threads=2)[0],
                   "int8": open_onnx(finder_int8, "detector", DETECTOR_METADATA_KEY, threads=2)[0]}

    crops = list(val.images.numpy().transpose(0, 2, 3, 1))
    labels = val.labels.numpy()
    batch = rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
    scene = finder_input(fit_scenes[0])
    crops_per_s: dict[str, list[float]] = {key: [] for key in classifiers}
    finder_ms: dict[str, list[float]] = {key: [] for key in finders}
    for _ in range(args.rounds):
        for key in classifiers:
            crops_per_s[key].append(256 / timed(classifiers[key].predict, batch, repeats=20))
            feed = {finders[key].get_inputs()[0].name: scene}
            finder_ms[key].append(1e3 * timed(finders[key].run, None, feed, repeats=10))
    for key, classifier in classifiers.items():
        errors = int((classifier.predict_crops(crops)[:, :-1].argmax(1) != labels).sum())
        print(f"{key:>5}: classifier {errors} validation errors of {len(labels)}, "
              f"{statistics.median(crops_per_s[key]):.0f} crops/s (batch 256); "
              f"finder {statistics.median(finder_ms[key]):.2f} ms on one {scene.shape[3]}x{scene.shape[2]} input")


if __name__ == "__main__":
    main()
