"""A SignNet read back from its exported model file computes what the file computes, and trains from there."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from signcam.classes import CLASSES
from signcam.classifier import Classifier
from signcam.errors import TrainingError
from training import cli, detector
from training.export import to_onnx
from training.model import SignNet
from training.onnx_io import write_onnx
from training.onnx_weights import calibrate_batchnorm, signdet_from_onnx, signnet_from_onnx
from training.signdet import SignDet


def _as_if_trained(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in eval mode, its batch norms given statistics and gains far from their defaults, as after training."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.2, 3)
            torch.nn.init.uniform_(module.weight, 0.5, 2)
            torch.nn.init.uniform_(module.bias, -0.5, 0.5)
    return model.eval()


def _trained_looking(contrast: str, widths: tuple[int, ...], depths: tuple[int, ...]) -> SignNet:
    torch.manual_seed(0)
    return _as_if_trained(SignNet(widths=widths, depths=depths, contrast=contrast))


def _export(model: SignNet, path: Path, recipe: dict | None = None) -> Path:
    """``model`` written as export writes it, with what the runtime needs of the metadata."""
    write_onnx(to_onnx(model, {"class_names": [c.name for c in CLASSES], "input_size": 32, "recipe": recipe or {}}),
               path)
    return path


def _batch_norms_train(model: SignNet) -> None:
    """Batch norms as in training, the rest (dropout) as in eval, so outputs can be compared."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.train()


def _images(count: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, 32, 32), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


@pytest.mark.parametrize(("contrast", "widths", "depths"),
                         [("global", (16, 32, 64, 128), (1, 1, 2, 2)), ("local", (8, 16, 24), (2, 1, 3))])
def test_the_rebuilt_network_computes_what_the_file_computes(contrast: str, widths: tuple[int, ...],
                                                             depths: tuple[int, ...], tmp_path: Path) -> None:
    original = _trained_looking(contrast, widths, depths)
    path = _export(original, tmp_path / "m.onnx")
    rebuilt, _ = signnet_from_onnx(path)
    assert rebuilt.arch == original.arch
    images = _images(64)
    with torch.no_grad():
        expected = torch.softmax(original(images.float()), 1)
        assert torch.allclose(torch.softmax(rebuilt(images.float()), 1), expected, atol=1e-5)
    from_runtime = Classifier(path, spin=False).predict(images.permute(0, 2, 3, 1).numpy())
    assert np.allclose(from_runtime, expected.numpy(), atol=1e-5)


def test_calibration_keeps_the_function_and_makes_training_mode_agree(tmp_path: Path) -> None:
    original = _trained_looking("global", (16, 32, 64, 128), (1, 1, 2, 2))
    rebuilt, _ = signnet_from_onnx(_export(original, tmp_path / "m.onnx"))
    images = _images(256).float()
    with torch.no_grad():
        before = rebuilt(images)
        calibrate_batchnorm(rebuilt, images, batch_size=100)  # in parts: the sums must add up
        assert torch.allclose(rebuilt(images), before, atol=1e-4), "eval mode computes exactly what it did"
        # In training each batch norm uses the batch's own statistics: on the images it was
        # calibrated on, those are the ones it measured, so the output is the same.
        _batch_norms_train(rebuilt)
        assert torch.allclose(rebuilt(images), before, atol=1e-3)


def test_without_calibration_training_mode_would_compute_something_else(tmp_path: Path) -> None:
    """Why calibration is needed: the file's folded batch norms know no statistics."""
    rebuilt, _ = signnet_from_onnx(_export(_trained_looking("global", (16, 32, 64, 128), (1, 1, 2, 2)),
                                           tmp_path / "m.onnx"))
    images = _images(256).float()
    with torch.no_grad():
        before = rebuilt(images)
        _batch_norms_train(rebuilt)
        assert not torch.allclose(rebuilt(images), before, atol=0.1)


def test_a_file_that_is_not_a_signnet_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a model")
    with pytest.raises(TrainingError, match="is not an ONNX model"):
        signnet_from_onnx(tmp_path / "junk.onnx")
    other = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["image"], ["out"])], "other",
        [onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
        [onnx.helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 3, 32, 32])]))
    onnx.save(other, str(tmp_path / "other.onnx"))
    with pytest.raises(TrainingError, match="is not a SignNet export"):
        signnet_from_onnx(tmp_path / "other.onnx")
    with pytest.raises(FileNotFoundError):
        signnet_from_onnx(tmp_path / "missing.onnx")


def test_the_recipe_is_read_from_the_metadata(tmp_path: Path) -> None:
    path = _export(SignNet().eval(), tmp_path / "m.onnx", recipe={"val_every": 6, "shadow": 0.2})
    assert signnet_from_onnx(path)[1] == {"val_every": 6, "shadow": 0.2}
    assert signnet_from_onnx(_export(SignNet().eval(), tmp_path / "bare.onnx"))[1] == {}


def test_fine_tuning_a_model_file_refuses_other_validation_tracks(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """A model that kept one track in 6 out has trained on the tracks --val-every 12 would validate on."""
    path = _export(SignNet().eval(), tmp_path / "m.onnx", recipe={"val_every": 6})
    assert cli.main(["fit", "--data-dir", str(tmp_path / "no-data"), "--output-dir", str(tmp_path / "run"),
                     "--init", str(path), "--val-every", "12"]) == 2
    err = capsys.readouterr().err
    assert "kept one GTSRB track in 6 out" in err and "--val-every 6" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def _export_finder(model: SignDet, path: Path, scale: float = 0.5) -> Path:
    """``model`` written as fit-detector writes it."""
    detector.export(model, argparse.Namespace(scale=scale, output=path), {})
    return path


def test_the_rebuilt_finder_computes_what_the_file_computes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = _as_if_trained(SignDet())
    path = _export_finder(original, tmp_path / "det.onnx", scale=0.4)
    rebuilt, meta = signdet_from_onnx(path)
    assert meta["scale"] == 0.4
    frames = torch.rand(2, 3, 96, 160) * 255
    with torch.no_grad():
        expected = original(frames)
        assert torch.allclose(rebuilt(frames), expected, atol=1e-4)
        calibrate_batchnorm(rebuilt, frames, batch_size=1)
        assert torch.allclose(rebuilt(frames), expected, atol=1e-3)
        for module in rebuilt.modules():  # training mode normalises by the batch, as calibrated
            if isinstance(module, torch.nn.BatchNorm2d):
                module.train()
        assert torch.allclose(rebuilt(frames), expected, atol=1e-2)


def test_a_classifier_file_is_no_finder(tmp_path: Path) -> None:
    path = _export(_trained_looking("global", (16, 32, 64, 128), (1, 1, 2, 2)), tmp_path / "m.onnx")
    with pytest.raises(TrainingError, match="is not a finder that fit-detector wrote"):
        signdet_from_onnx(path)
