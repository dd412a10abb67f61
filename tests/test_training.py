"""End to end on real data: fit a tiny run, resume it, evaluate, export to ONNX, classify with the CLI.

Needs $SIGNCAM_DATA (GTSRB archive and GTSDB scenes); the run uses 300 GTSRB images,
a few GTSDB scenes and one epoch, so the whole module takes well under a minute.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from signcam import cli as signcam_cli
from signcam.classes import CLASSES, NOT_A_SIGN
from signcam.classifier import CROP_MARGIN, DEFAULT_MODEL, READ_ZOOMS, REREAD_BELOW, Classifier, zoom_patches
from signcam.errors import DataError, TrainingError
from signcam.proposals import DEFAULT_DETECTOR
from training import cli, export
from training import evaluate as evaluate_module
from training import fit as fit_module
from training.augment import JPEG_QUALITY, Augment
from training.checkpoint import FIRST_ARCH, load_checkpoint, save_checkpoint
from training.data import GTSRB_LAYOUT
from training.evaluate import ZOOM_SCAN
from training.metrics import log_loss
from training.onnx_weights import signnet_from_onnx


def fit(*argv: str) -> int:
    return cli.main(["fit", "--limit", "300", "--batch-size", "128", *argv])


@pytest.fixture(scope="module")
def run_dir(gtsrb_root: Path, gtsdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert fit("--data-dir", str(gtsrb_root), "--gtsdb-dir", str(gtsdb_dir), "--output-dir", str(out),
               "--epochs", "1") == 0
    return out


@pytest.fixture(scope="module")
def report_dir(run_dir: Path, gtsrb_root: Path, gtsdb_dir: Path) -> Path:
    out = run_dir / "reports"
    assert cli.main(["evaluate", "--checkpoint", str(run_dir / "checkpoint.pt"), "--data-dir", str(gtsrb_root),
                     "--gtsdb-dir", str(gtsdb_dir), "--output-dir", str(out), "--limit", "600"]) == 0
    return out


@pytest.fixture(scope="module")
def model_file(run_dir: Path, report_dir: Path) -> Path:
    out = run_dir / "signnet.onnx"
    assert cli.main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--output", str(out),
                     "--report", str(report_dir / "evaluate-report.json")]) == 0
    return out


@pytest.fixture(scope="module")
def test_crops(gtsrb_root: Path) -> tuple[list[Path], np.ndarray]:
    """The first 64 GTSRB test images and their labels."""
    folder = gtsrb_root / "gtsrb"
    lines = (folder / "GT-final_test.csv").read_text().splitlines()[1:65]
    files = [folder / "GTSRB" / "Final_Test" / "Images" / line.split(";")[0] for line in lines]
    return files, np.array([int(line.split(";")[-1]) for line in lines])


def test_fit_writes_a_complete_checkpoint(run_dir: Path) -> None:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    keys = {"model", "ema", "optimizer", "lr_scheduler", "augment_rng", "epoch", "args", "history", "data"}
    assert keys <= set(state)
    assert state["epoch"] == 0
    (epoch,) = json.loads(state["history"])
    assert {"train_loss", "train_acc", "val_acc", "val_false_accept"} <= set(epoch)
    data = json.loads(state["data"])
    assert data["gtsrb_train"] == 300 and data["gtsdb_scenes"] == 6 and len(data["data_sha256"]) == 64


def test_resume_continues_an_interrupted_run(gtsrb_root: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "2")
    one_epoch = fit_module.train_one_epoch
    calls = []

    def interrupted_in_epoch_2(*args, **kwargs) -> dict:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return one_epoch(*args, **kwargs)

    monkeypatch.setattr(fit_module, "train_one_epoch", interrupted_in_epoch_2)
    assert fit(*argv) == 130
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(fit_module, "train_one_epoch", one_epoch)
    assert fit(*argv, "--resume", "--backlight", "0.5") != 0, "a resumed run must keep its recipe"
    assert fit(*argv, "--resume") == 0
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    history = json.loads(state["history"])
    assert state["epoch"] == 1 and [h["epoch"] for h in history] == [1, 2]
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_evaluate_writes_report_and_plots(report_dir: Path, capsys: pytest.CaptureFixture) -> None:
    report = json.loads((report_dir / "evaluate-report.json").read_text())
    assert report["test_images"] == 600 and 0 <= report["test_accuracy"] <= 1 and 0 <= report["test_rejected"] <= 1
    assert report["gtsdb_scenes"] == 12 and report["gtsdb_negatives"] > 100 and 0 <= report["false_accept_rate"] <= 1
    assert 0 <= report["false_accept_rate_at_conf"] <= report["false_accept_rate"]
    assert report["read_zooms"] == list(READ_ZOOMS) and set(report["validation_by_zoom"]) == {str(z) for z in ZOOM_SCAN}
    assert report["reread_below"] == REREAD_BELOW
    assert 0 <= report["validation_accuracy"] <= 1 and report["validation_log_loss"] > 0
    assert report["validation_errors"] == round((1 - report["validation_accuracy"]) * report["validation_images"])
    assert all(0 <= acc <= 1 for acc in report["validation_by_zoom"].values())
    rows = report["per_class"]
    assert [r["id"] for r in rows] == list(range(len(CLASSES))) and sum(r["n"] for r in rows) == 600
    for name in ("confusion.png", "training-curves.png", "worst-mistakes.png"):
        image = cv2.imread(str(report_dir / name))
        assert image is not None and min(image.shape[:2]) > 300, name


def test_export_embeds_metadata_and_matches_torch(model_file: Path, run_dir: Path, report_dir: Path,
                                                  test_crops: tuple[list[Path], np.ndarray]) -> None:
    classifier = Classifier(model_file)
    meta = classifier.info.extra
    report = json.loads((report_dir / "evaluate-report.json").read_text())
    assert meta["class_names"] == [c.name for c in CLASSES] and meta["reject_index"] == NOT_A_SIGN
    assert (meta["input_size"], meta["channel_order"], meta["crop_margin"]) == (32, "BGR", CROP_MARGIN)
    assert meta["test_accuracy"] == report["test_accuracy"] and meta["read_zooms"] == report["read_zooms"]
    assert meta["reread_below"] == report["reread_below"] == classifier.info.reread_below
    assert meta["false_accept_rate"] == report["false_accept_rate"]
    assert meta["params"] > 100_000 and meta["macs"] > 1_000_000 and meta["recipe"]["limit"] == 300
    assert meta["shape"] == load_checkpoint(run_dir / "checkpoint.pt")[0].arch
    assert len(meta["data"]["data_sha256"]) == 64 and meta["torch_version"] == torch.__version__

    files, _labels = test_crops
    images = np.stack([cv2.imread(str(f)) for f in files])
    model, _info = load_checkpoint(run_dir / "checkpoint.pt")
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(images.transpose(0, 3, 1, 2)).float()), 1).numpy()
    np.testing.assert_allclose(classifier.predict(images), expected, atol=export.TOLERANCE)


@pytest.mark.parametrize(("zooms", "reread_below"), [(None, None), ([1.0], None), ([1.0, 1.3], None), (None, 1.0)],
                         ids=["as-the-model-says", "as-framed", "other-zooms", "every-crop-at-every-zoom"])
def test_classify_real_crops_through_the_cli(model_file: Path, test_crops: tuple[list[Path], np.ndarray],
                                             capsys: pytest.CaptureFixture, zooms: list[float] | None,
                                             reread_below: float | None) -> None:
    files, _labels = test_crops
    code = signcam_cli.main(["classify", *map(str, files[:16]), "--model", str(model_file), "--json", "-",
                             "--top", "5", *(["--zoom", *map(str, zooms)] if zooms else []),
                             *(["--reread-below", str(reread_below)] if reread_below else [])])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and [r["source"] for r in records] == list(map(str, files[:16]))
    classifier = Classifier(model_file)
    crops = np.stack([cv2.imread(str(f)) for f in files[:16]])  # GTSRB files are already 32x32
    assert classifier.info.read_zooms == READ_ZOOMS
    readings = [classifier.predict(zoom_patches(crops, zoom)) for zoom in zooms or READ_ZOOMS]
    again = readings[0].max(1) < (reread_below or REREAD_BELOW)  # the first reading unsure: all averaged
    probs = np.where(again[:, None], np.mean(readings, axis=0), readings[0])
    for record, p in zip(records, probs, strict=True):
        assert record["class_id"] == int(p[:NOT_A_SIGN].argmax())
        assert record["score"] == pytest.approx(float(p[:NOT_A_SIGN].max()), abs=1e-6)
        assert [c for c, _ in record["top"]] == list(np.argsort(-p[:NOT_A_SIGN], kind="stable")[:5])


def test_export_refuses_when_onnx_disagrees(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(export, "TOLERANCE", -1.0)
    out = tmp_path / "model.onnx"
    assert cli.main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--output", str(out)]) == 2
    assert "differs from torch" in capsys.readouterr().err and not out.exists()


def test_export_refuses_a_report_of_other_weights(run_dir: Path, report_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--weights", "model",
                     "--output", str(tmp_path / "m.onnx"), "--report", str(report_dir / "evaluate-report.json")]) == 2
    assert "measured the ema weights, not the model weights" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("output", ["checkpoint", "report", "folder"])
def test_export_refuses_an_output_that_would_destroy_an_input_or_is_a_folder(
        output: str, run_dir: Path, report_dir: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint, report = run_dir / "checkpoint.pt", report_dir / "evaluate-report.json"
    before = checkpoint.read_bytes(), report.read_bytes()
    target = {"checkpoint": checkpoint, "report": report, "folder": report_dir}[output]
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--output", str(target), "--report", str(report)]) == 2
    err = capsys.readouterr().err
    assert ("it is a folder" if output == "folder" else "would overwrite the input") in err
    assert (checkpoint.read_bytes(), report.read_bytes()) == before
    assert not list(run_dir.rglob("*.partial*"))


def test_resume_refuses_a_run_with_other_data_or_shape(run_dir: Path, gtsrb_root: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "checkpoint.pt").write_bytes((run_dir / "checkpoint.pt").read_bytes())
    assert fit("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "1", "--resume") == 2
    assert "gtsdb_dir differs" in capsys.readouterr().err  # the run it continues cut crops from GTSDB scenes


def test_export_refuses_a_report_of_another_checkpoint(run_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"checkpoint_sha256": "0" * 64, "test_accuracy": 1.0}))
    out = tmp_path / "model.onnx"
    assert cli.main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--output", str(out),
                     "--report", str(report)]) == 2
    assert "another checkpoint" in capsys.readouterr().err and not out.exists()


def test_fit_without_data_explains_the_layout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["fit", "--data-dir", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signcam-train: error:") and GTSRB_LAYOUT in err and "Traceback" not in err
    assert not (tmp_path / "run").exists(), "a run that never started leaves no empty folder"


@pytest.mark.parametrize("argv", [
    ["--epochs", "0"], ["--batch-size", "0"], ["--lr", "0"], ["--val-every", "1"], ["--limit", "-5"],
    ["--shadow", "-3"], ["--backlight", "5"], ["--ema-decay", "5"], ["--distill-temperature", "0"],
    ["--seed", "-1"], ["--seed", str(2**32)], ["--weight-decay", "-1"], ["--weight-decay", "nan"],
    ["--threads", "10000000000"],
], ids=lambda argv: " ".join(argv))
def test_fit_refuses_nonsense_numbers_before_anything_runs(argv: list[str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2 and f"argument {argv[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--read-zooms", "0"], ["--limit", "-5"], ["--worst", "-5"]], ids=lambda a: a[0])
def test_evaluate_refuses_nonsense_numbers(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--data-dir", str(tmp_path), *argv])
    assert exit_info.value.code == 2 and f"argument {argv[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "2", "--stop-after", "5"], "past the end of the schedule"),
    (["--detector", "signdet.onnx"], "give --gtsdb-dir too"),
    (["--widths", *["8"] * 7, "--depths", *["1"] * 7], "at most 6 stages"),
])
def test_fit_refuses_options_that_contradict_each_other(argv: list[str], message: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["fit", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "run").exists()


@pytest.mark.parametrize(("shape", "refused"), [(["--depths", "1", "1", "2", "2"], True),
                                               (["--depths", "1", "2", "2", "2", "--contrast", "global"], False)])
def test_fit_from_init_refuses_a_shape_other_than_its_networks(shape: list[str], refused: bool, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    """The shipped network has --depths 1 2 2 2; a fine-tune of it cannot train another shape."""
    assert cli.main(["fit", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "run"), "--val-every", "6",
                     "--init", str(DEFAULT_MODEL), *shape]) == 2
    err = capsys.readouterr().err
    assert ("has --depths 1 2 2 2, not 1 1 2 2" in err) == refused
    assert refused or "GTSRB" in err, "a shape that agrees goes on, here to the missing data"
    assert not (tmp_path / "run").exists()


def test_fit_with_a_batch_larger_than_the_data_says_so(gtsrb_root: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["fit", "--data-dir", str(gtsrb_root), "--limit", "100", "--output-dir", str(tmp_path / "run"),
                     "--epochs", "1"]) == 2  # the default batch of 256
    assert "not one step to train" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_training_that_diverges_stops_with_a_clear_error() -> None:
    from training.data import TensorSet

    model = fit_module.SignNet()
    with torch.no_grad():
        model.head[-1].weight.fill_(float("nan"))
    ema = torch.optim.swa_utils.AveragedModel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    data = TensorSet(torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8), torch.tensor([1, 2, 3, 4]))
    with pytest.raises(TrainingError, match="diverged"):
        fit_module.train_one_epoch(model, ema, data, Augment(seed=0, device=torch.device("cpu")), optimizer,
                                   scheduler, torch.nn.CrossEntropyLoss(), 2, torch.device("cpu"), 0, 1)


def test_a_checkpoint_with_diverged_weights_is_neither_evaluated_nor_exported(tmp_path: Path) -> None:
    from training.model import SignNet

    model = SignNet()
    with torch.no_grad():
        model.head[-1].bias.fill_(float("nan"))
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "epoch": 0, "args": "{}", "history": "[]"}, path)
    with pytest.raises(TrainingError, match="not finite"):
        load_checkpoint(path, weights="model")
    # Nor does the torch-vs-ONNX check pass output that is not a number.
    images = torch.rand(4, 3, 32, 32) * 255
    assert export.max_prob_difference(model.eval(), export.to_onnx(model.eval(), {}), images)[0] == float("inf")


def test_a_failed_checkpoint_write_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"epoch": 0}, path)

    def disk_full(state: dict, target: Path) -> None:
        Path(target).write_bytes(b"half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1722944 vs 1722840")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=f"cannot write the checkpoint {path}"):
        save_checkpoint({"epoch": 1}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 0}
    assert list(tmp_path.iterdir()) == [path]


def test_download_offline_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    import torchvision.datasets.gtsrb

    def offline(*args, **kwargs) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets.gtsrb, "download_and_extract_archive", offline)
    assert cli.main(["fit", "--data-dir", str(tmp_path / "nothing"), "--download",
                     "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "downloading GTSRB failed" in err and "extract a copy" in err and "Traceback" not in err
    assert "pass --download" not in err  # it was passed


def test_a_stalled_download_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import torchvision.datasets.gtsrb

    from training.data import DOWNLOAD_TIMEOUT_S, load_gtsrb

    waited = []

    def stalled(*args, **kwargs) -> None:
        waited.append(socket.getdefaulttimeout())  # what a socket opened now would wait at most
        raise TimeoutError("timed out")

    monkeypatch.setattr(torchvision.datasets.gtsrb, "download_and_extract_archive", stalled)
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError, match="downloading GTSRB failed"):
        load_gtsrb(tmp_path, "train", download=True)
    assert waited == [DOWNLOAD_TIMEOUT_S] and socket.getdefaulttimeout() == before


def test_a_wrong_network_shape_fails_before_the_data_is_looked_for(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["fit", "--data-dir", str(tmp_path / "nothing"), "--widths", "16", "32",
                     "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "one depth per stage: 2 --widths but 4 --depths" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", [None, b"", b"not a zip file", b"a text file\n"],
                         ids=["missing", "empty", "garbage", "text"])
@pytest.mark.parametrize("command", ["evaluate", "export", "fit", "resume"])
def test_bad_checkpoint_is_one_clear_error(command: str, content: bytes | None, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    """For fit, a bad --teacher is reported before the (here missing) data is looked for."""
    checkpoint = tmp_path / "checkpoint.pt"
    if content is not None:
        checkpoint.write_bytes(content)
    argv = {"evaluate": ["evaluate", "--checkpoint", str(checkpoint), "--data-dir", str(tmp_path)],
            "export": ["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "m.onnx")],
            "fit": ["fit", "--teacher", str(checkpoint), "--data-dir", str(tmp_path),
                    "--output-dir", str(tmp_path / "run")],
            "resume": ["fit", "--resume", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path)]}[command]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(checkpoint) in err
    assert ("no checkpoint at" if content is None else "not a signcam-train checkpoint") in err
    assert "(101)" not in err and "(EOFError)" not in err  # pickle's own words are no reason a user can read
    assert "weights_only" not in err  # torch's advice to unpickle anything is not for files that are not ours


@pytest.mark.parametrize("device", ["gpu", "cuda:7", "meta"])
def test_a_device_that_is_not_there_is_one_clear_error(device: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["fit", "--data-dir", str(tmp_path / "nothing"), "--device", device,
                     "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"signcam-train: error: --device {device}: ") and err.count("\n") == 1


def test_weights_that_do_not_fit_their_network_are_one_clear_error(run_dir: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["arch"] = json.dumps({**json.loads(state["arch"]), "widths": [8, 16, 32, 64]})
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(state, checkpoint)
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "its ema weights do not fit the network it describes" in err and err.count("\n") == 1


@pytest.mark.parametrize(("arch", "message"), [("{not json", "cannot be built"),
                                                ('{"contrast": "sideways"}', "contrast must be one of")])
def test_a_checkpoint_describing_no_signnet_is_one_clear_error(run_dir: Path, tmp_path: Path, arch: str, message: str,
                                                                capsys: pytest.CaptureFixture) -> None:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["arch"] = arch
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(state, checkpoint)
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(("report", "message"), [(None, "no evaluate report at"),
                                                 ("[1, 2]", "is not an evaluate report")])
def test_an_export_report_that_is_none_is_one_clear_error(run_dir: Path, tmp_path: Path, report: str | None,
                                                          message: str, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "report.json"
    if report is not None:
        path.write_text(report)
    assert cli.main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--output", str(tmp_path / "m.onnx"),
                     "--report", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "m.onnx").exists()


def test_export_of_a_bad_checkpoint_leaves_no_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    out = tmp_path / "new" / "signnet.onnx"
    assert cli.main(["export", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--output", str(out)]) == 2
    assert "not a signcam-train checkpoint" in capsys.readouterr().err and not out.parent.exists()


def test_a_defect_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what the commands refuse becomes one line; a bug is not dressed up as the user's mistake."""
    def broken(_args: object) -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(fit_module, "main", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["fit", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "run")])


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
def test_fine_tuning_adds_the_detectors_proposals_as_examples(run_dir: Path, gtsrb_root: Path, gtsdb_dir: Path,
                                                               tmp_path: Path) -> None:
    assert fit("--data-dir", str(gtsrb_root), "--gtsdb-dir", str(gtsdb_dir), "--output-dir", str(tmp_path),
               "--epochs", "1", "--init", str(run_dir / "checkpoint.pt"), "--detector", str(DEFAULT_DETECTOR)) == 0
    before = json.loads(torch.load(run_dir / "checkpoint.pt", weights_only=True)["data"])
    after = json.loads(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["data"])
    assert after["gtsdb_scenes"] == before["gtsdb_scenes"]
    assert after["gtsdb_negatives"] > before["gtsdb_negatives"]
    assert after["gtsdb_positives"] > before["gtsdb_positives"]


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
@pytest.mark.parametrize(("jpeg", "compressed"), [("0.2", JPEG_QUALITY), ("0", None)])
def test_with_jpeg_the_finders_candidates_are_mined_on_compressed_scenes_too(
        gtsrb_root: Path, gtsdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        jpeg: str, compressed: tuple[float, float] | None) -> None:
    asked = []
    real = fit_module.cut_scene_crops
    monkeypatch.setattr(fit_module, "cut_scene_crops",
                        lambda scenes, **options: asked.append(options["compressed"]) or real(scenes, **options))
    assert fit("--data-dir", str(gtsrb_root), "--gtsdb-dir", str(gtsdb_dir), "--output-dir", str(tmp_path),
               "--epochs", "1", "--detector", str(DEFAULT_DETECTOR), "--jpeg", jpeg) == 0
    assert asked == [compressed]


def test_fine_tuning_starts_from_the_shipped_model_file(gtsrb_root: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--init assets/signnet.onnx``: the network reads signs from the first batch on, in training
    (batch norms measured again) as in validation, and the smear and the compression are part of the recipe."""
    made = []
    monkeypatch.setattr(fit_module, "Augment", lambda **options: made.append(options) or Augment(**options))
    assert fit("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "1", "--lr", "1e-6",
               "--init", str(DEFAULT_MODEL), "--val-every", "6", "--motion-blur", "0.2", "--jpeg", "0.2") == 0
    first = json.loads((tmp_path / "history.json").read_text())[0]
    assert first["train_acc"] > 0.8 and first["val_acc"] > 0.9
    recipe = json.loads(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["args"])
    assert recipe["init"] == str(DEFAULT_MODEL) and recipe["motion_blur"] == 0.2 and recipe["jpeg"] == 0.2
    assert made[0]["motion_blur"] == 0.2 and made[0]["jpeg"] == 0.2, "and the augmentation applies them"
    # The recipe and the model file say the shape trained, which --init took from the file, not from --depths.
    checkpoint, model_file = tmp_path / "checkpoint.pt", tmp_path / "m.onnx"
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--output", str(model_file)]) == 0
    shape = Classifier(model_file).info.extra["shape"]
    assert shape == load_checkpoint(checkpoint)[0].arch == signnet_from_onnx(DEFAULT_MODEL)[0].arch
    assert {k: recipe[k] for k in shape} == shape
    # Runs from before the recipe recorded the shape hold fit's default one; the same command still resumes them.
    state = torch.load(checkpoint, weights_only=True)
    state["args"] = json.dumps(recipe | {"depths": [1, 1, 2, 2]})
    torch.save(state, checkpoint)
    assert fit("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "1", "--lr", "1e-6",
               "--init", str(DEFAULT_MODEL), "--val-every", "6", "--motion-blur", "0.2", "--jpeg", "0.2",
               "--resume") == 0
    # and export writes the network's shape into the model file's recipe.
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "old.onnx")]) == 0
    assert Classifier(tmp_path / "old.onnx").info.extra["recipe"]["depths"] == shape["depths"]


def test_recipe_options_are_recorded_and_evaluate_validates_on_the_same_tracks(
        run_dir: Path, gtsrb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    teacher = run_dir / "checkpoint.pt"
    assert fit("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "1",
               "--teacher", str(teacher), "--shadow", "0.2", "--val-every", "6", "--mixup", "0.5") == 0
    recipe = json.loads(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["args"])
    assert recipe["teacher"] == [str(teacher)] and recipe["shadow"] == 0.2 and recipe["val_every"] == 6
    assert recipe["mixup"] == 0.5
    assert fit("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "1", "--resume",
               "--shadow", "0.2", "--val-every", "6", "--mixup", "0.5") != 0, \
        "resuming without the teacher changes the recipe"
    assert fit("--data-dir", str(gtsrb_root), "--output-dir", str(tmp_path), "--epochs", "1", "--resume",
               "--teacher", str(teacher), "--shadow", "0.2", "--val-every", "6") != 0, "as does dropping --mixup"
    assert "mixup differs" in capsys.readouterr().err

    splits = []
    monkeypatch.setattr(evaluate_module, "split_by_track", lambda data, every: splits.append(every) or (data, data))
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--data-dir", str(gtsrb_root),
                     "--output-dir", str(tmp_path / "reports"), "--limit", "50"]) == 0
    assert splits == [6]


def test_distillation_loss_is_zero_only_when_the_student_agrees() -> None:
    teacher = fit_module.SignNet().eval()
    images = torch.rand(8, 3, 32, 32) * 255
    loss = fit_module.Distillation([teacher, teacher], temperature=2.0)
    with torch.no_grad():
        agreeing = teacher(images)
    assert loss(agreeing, images).item() == pytest.approx(0, abs=1e-5)
    assert loss(agreeing + torch.randn_like(agreeing) * 3, images).item() > 0.05
    assert not any(p.requires_grad for p in teacher.parameters()), "teachers stay fixed"
    assert not list(loss.parameters()), "nor are they saved or moved with the student"


def test_a_teacher_read_by_onnx_runtime_teaches_what_torch_reads() -> None:
    """On a CPU fit runs its teachers through ONNX Runtime; the loss they give must not change."""
    teacher = fit_module.SignNet(depths=(1, 2, 2, 2)).eval()
    student = fit_module.SignNet()
    images = torch.rand(16, 3, 32, 32) * 255
    logits = student(images)
    runner = fit_module.OnnxRunner(teacher, 32, threads=1)
    with torch.no_grad():
        assert torch.allclose(runner(images), teacher(images), atol=1e-4)
    by_torch = fit_module.Distillation([teacher], temperature=2.0)(logits, images)
    by_onnx = fit_module.Distillation([runner], temperature=2.0)(logits, images)
    assert by_onnx.item() == pytest.approx(by_torch.item(), rel=1e-4)
    by_onnx.backward()  # the student still learns through the teacher's reading
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)


def test_with_mixup_the_student_the_teacher_and_the_labels_all_see_the_same_blend() -> None:
    from training.data import TensorSet

    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self, name: str, network: torch.nn.Module) -> None:
            super().__init__()
            self.name, self.network = name, network

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            seen[self.name] = images.detach().clone()
            return self.network(images)

    def criterion(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen["targets"] = targets
        return torch.nn.functional.cross_entropy(logits, targets)

    student = Spy("student", fit_module.SignNet())
    teacher = Spy("teacher", fit_module.SignNet().eval())
    ema = torch.optim.swa_utils.AveragedModel(student)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    data = TensorSet(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8), torch.arange(8))
    fit_module.train_one_epoch(student, ema, data, Augment(seed=0, mixup=1.0), optimizer, scheduler, criterion,
                               8, torch.device("cpu"), 0, 1, fit_module.Distillation([teacher], 2.0), 0.5)
    assert torch.equal(seen["student"], seen["teacher"]), "the teacher reads the blend the student reads"
    targets = seen["targets"]
    assert targets.shape == (8, NOT_A_SIGN + 1)
    assert (targets.max(1).values < 1).sum() >= 4, "and the labels are blended (bar an image drawn as its own partner)"


def test_log_loss_scores_the_right_sign_over_all_outputs() -> None:
    probs = torch.full((2, len(CLASSES) + 1), 0.0)
    probs[0, 3], probs[0, NOT_A_SIGN] = 0.5, 0.5  # right sign, but half "not a sign"
    probs[1, 7] = 1.0  # certain and right
    loss = log_loss(probs, torch.tensor([3, 7]))
    assert loss == pytest.approx(np.log(2) / 2)
    assert log_loss(probs, torch.tensor([4, 7])) > 5  # a wrong sign costs far more


@pytest.mark.parametrize("contrast", ["global", "local"])
def test_signnet_shapes_and_size_limits(contrast: str) -> None:
    from training.model import SignNet, count_macs

    model = SignNet(contrast=contrast).eval()
    assert model(torch.zeros(3, 3, 32, 32)).shape == (3, NOT_A_SIGN + 1)
    assert sum(p.numel() for p in model.parameters()) <= 500_000 and count_macs(model) <= 25_000_000


def test_signnet_rejects_a_wrong_shape_description() -> None:
    from training.model import SignNet

    with pytest.raises(ValueError, match="contrast"):
        SignNet(contrast="histogram")
    with pytest.raises(ValueError, match="depth"):
        SignNet(widths=(16, 32), depths=(1, 1, 1))


def test_checkpoint_rebuilds_the_network_shape_it_was_trained_with(tmp_path: Path) -> None:
    """A checkpoint records its shape; load_checkpoint builds that network, not the default one."""
    from training.model import SignNet

    model = SignNet(widths=(8, 16, 24, 32), depths=(1, 1, 1, 1), contrast="local")
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "epoch": 0, "args": "{}", "history": "[]",
                "arch": json.dumps(model.arch)}, path)
    loaded, info = load_checkpoint(path, weights="model")
    assert loaded.arch == model.arch
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # what export records
    x = torch.rand(2, 3, 32, 32) * 255
    assert torch.allclose(loaded(x), model.eval()(x))


def test_a_checkpoint_without_its_shape_is_one_of_the_first_networks(tmp_path: Path) -> None:
    from training.model import SignNet

    model = SignNet(widths=tuple(FIRST_ARCH["widths"]), depths=tuple(FIRST_ARCH["depths"]))
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "epoch": 0, "args": "{}", "history": "[]"}, path)
    loaded, _ = load_checkpoint(path, weights="model")
    assert loaded.arch == FIRST_ARCH


def test_false_accepts_need_held_out_scenes(tmp_path: Path) -> None:
    from training.evaluate import evaluate_gtsdb

    cv2.imwrite(str(tmp_path / "00001.jpg"), np.zeros((80, 80, 3), np.uint8))
    (tmp_path / "gt.txt").write_text("00001.jpg;10;10;40;40;14\n")
    with pytest.raises(DataError, match="holds no held-out scene"):
        evaluate_gtsdb(None, tmp_path, "cpu")
