"""benchmarks/read_speed.py: the shipped classifier timed and scored on GTSRB's test set, four ways."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torchvision")  # the benchmark reads GTSRB through it

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import read_speed  # noqa: E402

from signcam.classifier import BATCH, DEFAULT_MODEL, Classifier, zoom_patches  # noqa: E402
from signcam.commands.classify import BATCH_SIZE  # noqa: E402
from training.data import load_gtsrb  # noqa: E402


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
def test_each_way_is_timed_and_scored_as_it_says(gtsrb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "read-speed.json"
    monkeypatch.setattr(sys, "argv", ["read_speed.py", str(gtsrb_root), "--rounds", "2", "--limit", "3000",
                                      "--json", str(out)])
    assert read_speed.main() == 0
    figures = json.loads(out.read_text())
    assert "as classify reads" in capsys.readouterr().out

    classifier = Classifier(threads=2)
    test = load_gtsrb(gtsrb_root, "test").subset(np.arange(3000))
    patches = np.ascontiguousarray(test.images.permute(0, 2, 3, 1).numpy())
    first, closer = classifier.predict(patches), classifier.predict(zoom_patches(patches, 1.1))
    unsure = first.max(1) < 0.7
    readings = {"once": first, "every zoom": (first + closer) / 2,
                "as classify reads": np.where(unsure[:, None], (first + closer) / 2, first)}
    ways = read_speed._ways(classifier)
    for name, expected in readings.items():
        np.testing.assert_allclose(classifier.read_crops(patches, **ways[name]), expected, rtol=1e-5, atol=1e-7)
    labels = test.labels.numpy()
    assert figures["test_errors"] == {name: int((p[:, :-1].argmax(1) != labels).sum()) for name, p in readings.items()}
    assert figures["reread_share"] == pytest.approx(unsure.mean(), abs=1e-4) and 0 < unsure.mean() < 0.5
    assert figures["images"] == 3000 and (figures["read_zooms"], figures["reread_below"]) == ([1.0, 1.1], 0.7)
    assert set(figures["crops_per_s"]) == {*readings, read_speed.ONE_SESSION}
    assert all(len(rates) == 2 and min(rates) > 0 for rates in figures["crops_per_s"].values())
    assert set(figures["ratios_median"]) == {f"as classify reads / {way}" for way in ("once", read_speed.ONE_SESSION)}
    assert (figures["handed_over"], figures["batch"]) == (BATCH_SIZE, BATCH) and BATCH_SIZE > 2 * BATCH
    assert set(figures["single_crop_ms_median"]) == {"once", "every zoom"}


@pytest.mark.parametrize("wrong", ["data", "model"])
def test_a_wrong_path_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture, wrong: str) -> None:
    args = [str(tmp_path)] if wrong == "data" else [str(tmp_path), "--model", str(tmp_path / "none.onnx")]
    monkeypatch.setattr(sys, "argv", ["read_speed.py", *args])
    assert read_speed.main() == 2
    err = capsys.readouterr().err
    assert err.startswith("read_speed: ") and "Traceback" not in err
    assert ("GTSRB test split not found" if wrong == "data" else "model file not found") in err
