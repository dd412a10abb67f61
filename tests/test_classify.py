"""``signcam classify``: JSON lines, table, path expansion and per-file errors.

The crops are synthetic colour fields and the model is a tiny ONNX graph with signcam
metadata whose answer depends on the mean colour, so every expected result is known.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam import cli
from signcam.classes import CLASSES, NOT_A_SIGN
from signcam.classifier import CROP_MARGIN, METADATA_KEY
from signcam.commands import classify

STOP, KEEP_RIGHT = 14, 38
#: BGR colour and size of each synthetic crop, and the toy model's answer: class and verdict.
CROPS = {
    "red.png": ((25, 25, 255), (40, 52), STOP, "yes"),
    "blue.jpg": ((255, 25, 25), (90, 60), KEEP_RIGHT, "yes"),
    "grey.png": ((128, 128, 128), (20, 20), None, "not a sign"),
    "dim-red.png": ((32, 51, 128), (33, 33), STOP, "low score"),  # best sign is Stop but p ~ 0.35
}


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX: mean BGR colour -> softmax(20 (r - g - b) for Stop, 20 (b - r - g) for Keep right, 3 for reject)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((3, NOT_A_SIGN + 1), np.float32)
    weights[:, STOP] = np.array([-20, -20, 20]) / 255
    weights[:, KEEP_RIGHT] = np.array([20, -20, -20]) / 255
    bias = np.zeros(NOT_A_SIGN + 1, np.float32)
    bias[NOT_A_SIGN] = 3
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["mean", "weights"], ["scaled"]),
         helper.make_node("Add", ["scaled", "bias"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "toy", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", NOT_A_SIGN + 1])],
        initializer=[numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = {"class_names": [c.name for c in CLASSES], "input_size": 32, "channel_order": "BGR",
            "crop_margin": CROP_MARGIN, "reject_index": NOT_A_SIGN}
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    path = tmp_path_factory.mktemp("model") / "toy.onnx"
    onnx.save(model, path)
    return path


def _write_crop(path: Path, colour: tuple[int, int, int], size: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.empty((size[1], size[0], 3), np.uint8)
    image[:] = colour
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def crops(tmp_path: Path) -> Path:
    folder = tmp_path / "crops"
    for name, (colour, size, _cls, _ok) in CROPS.items():
        _write_crop(folder / name, colour, size)
    return folder


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["classify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines_have_exactly_the_documented_schema(crops: Path, toy_model: Path, capsys) -> None:
    code, out, err = run(capsys, str(crops), "--model", str(toy_model), "--json", "-", "--top", "2")
    assert code == 0 and err == ""
    records = json_lines(out)
    assert sorted(Path(r["source"]).name for r in records) == sorted(CROPS)
    for record in records:
        assert list(record) == ["source", "class_id", "label", "score", "accepted", "top"]
        assert type(record["class_id"]) is int and 0 <= record["class_id"] < NOT_A_SIGN
        assert record["label"] == CLASSES[record["class_id"]].name
        assert type(record["score"]) is float and 0 <= record["score"] <= 1
        assert type(record["accepted"]) is bool
        assert len(record["top"]) == 2 and record["top"][0] == [record["class_id"], record["score"]]
        assert record["top"][0][1] >= record["top"][1][1]
        _colour, _size, expected_class, verdict = CROPS[Path(record["source"]).name]
        assert record["accepted"] == (verdict == "yes")
        if expected_class is not None:
            assert record["class_id"] == expected_class


@pytest.mark.parametrize(("zoom", "expected"), [(None, KEEP_RIGHT), ("1", KEEP_RIGHT), ("2", STOP)],
                         ids=["model-without-read-zoom", "as-framed", "closer"])
def test_zoom_reads_the_crop_closer(tmp_path: Path, toy_model: Path, capsys, zoom: str | None,
                                    expected: int) -> None:
    # Blue, with a red middle a quarter of its area: as framed the toy sees mostly blue;
    # read twice as close it sees only red.
    image = np.empty((40, 40, 3), np.uint8)
    image[:] = (255, 25, 25)
    image[10:30, 10:30] = (25, 25, 255)
    path = tmp_path / "framed.png"
    assert cv2.imwrite(str(path), image)
    code, out, _ = run(capsys, str(path), "--model", str(toy_model), "--json", "-", *(["--zoom", zoom] if zoom else []))
    (record,) = json_lines(out)
    assert code == 0 and record["class_id"] == expected


def test_zoom_out_of_range_is_a_usage_error(crops: Path, toy_model: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(capsys, str(crops), "--model", str(toy_model), "--zoom", "5")
    assert exit_.value.code == 2 and "between 0.5 and 2" in capsys.readouterr().err


def _altered(toy_model: Path, folder: Path, meta: str | None = None, bias: float | None = None) -> Path:
    """The toy model with other metadata, or with every bias set to ``bias``."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(toy_model)
    if meta is not None:
        del model.metadata_props[:]
        helper.set_model_props(model, {METADATA_KEY: meta})
    if bias is not None:
        old = next(t for t in model.graph.initializer if t.name == "bias")
        old.CopyFrom(numpy_helper.from_array(np.full(NOT_A_SIGN + 1, bias, np.float32), "bias"))
    path = folder / "altered.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"meta": "{}"}, "its 'signcam' metadata lacks class_names, input_size"),
    ({"meta": "not json"}, "its 'signcam' metadata is not JSON"),
    ({"meta": json.dumps({"class_names": [c.name for c in CLASSES], "input_size": 64})},
     "does not take the 64x64 crops its metadata names"),
    ({"bias": float("nan")}, "gives probabilities that are not numbers"),
], ids=["keys", "json", "input-size", "nan"])
def test_a_model_file_whose_contents_do_not_match_its_metadata_is_one_line(
        crops: Path, toy_model: Path, tmp_path: Path, capsys, change: dict, message: str) -> None:
    code, out, err = run(capsys, str(crops), "--model", str(_altered(toy_model, tmp_path, **change)))
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


@pytest.mark.parametrize(("option", "message"), [("--top", "not a whole number: 'three'"),
                                                 ("--conf", "not a number: 'high'")])
def test_a_word_for_a_number_is_a_usage_error_that_says_so(crops: Path, toy_model: Path, capsys, option: str,
                                                            message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(capsys, str(crops), "--model", str(toy_model), option, message.split("'")[1])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_run_quietly(crops: Path, toy_model: Path) -> None:
    """`signcam classify ... | head -1`."""
    with subprocess.Popen([sys.executable, "-m", "signcam", "classify", str(crops), "--model", str(toy_model),
                           "--json", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run_:
        assert json.loads(run_.stdout.readline())["source"]
        run_.stdout.close()
        err = run_.stderr.read().decode()
    assert run_.returncode == 0 and "Traceback" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_standard_output_on_a_full_disk_is_one_line(crops: Path, toy_model: Path) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "signcam", "classify", str(crops), "--model", str(toy_model)],
                              stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == "signcam: error: No space left on device"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("conf", "accepted"), [(0.5, False), (0.3, True)])
def test_conf_sets_the_acceptance_threshold(crops: Path, toy_model: Path, capsys, conf: float,
                                            accepted: bool) -> None:
    code, out, _ = run(capsys, str(crops / "dim-red.png"), "--model", str(toy_model), "--json", "-",
                       "--conf", str(conf))
    (record,) = json_lines(out)
    assert code == 0 and record["class_id"] == STOP and record["accepted"] is accepted


def test_conf_out_of_range_is_a_usage_error(crops: Path, toy_model: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(capsys, str(crops), "--model", str(toy_model), "--conf", "2")
    assert exit_.value.code == 2 and "must be between 0 and 1" in capsys.readouterr().err


def test_json_over_an_input_image_is_refused_and_the_image_kept(crops: Path, toy_model: Path, capsys) -> None:
    image = crops / "red.png"
    before = image.read_bytes()
    code, out, err = run(capsys, str(image), "--model", str(toy_model), "--json", str(image))
    assert code == 2 and out == "" and image.read_bytes() == before
    assert err == f"signcam: error: --json {image} would overwrite the input {image.resolve()}: write somewhere else\n"


def test_json_over_a_hard_link_to_an_input_image_is_refused(crops: Path, toy_model: Path, capsys) -> None:
    image, link = crops / "red.png", crops.parent / "link.png"
    link.hardlink_to(image)
    before = image.read_bytes()
    code, _, err = run(capsys, str(image), "--model", str(toy_model), "--json", str(link))
    assert code == 2 and image.read_bytes() == before and "would overwrite the input" in err


def test_json_over_the_model_is_refused(crops: Path, toy_model: Path, capsys) -> None:
    before = toy_model.read_bytes()
    code, _, err = run(capsys, str(crops), "--model", str(toy_model), "--json", str(toy_model))
    assert code == 2 and toy_model.read_bytes() == before and "would overwrite the input" in err


def test_json_into_a_missing_folder_is_one_line_exit_2(crops: Path, toy_model: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "missing" / "out.jsonl"
    code, _, err = run(capsys, str(crops), "--model", str(toy_model), "--json", str(target))
    assert code == 2 and err == f"signcam: error: cannot write {target}: No such file or directory\n"


def test_table_is_aligned(crops: Path, toy_model: Path, capsys) -> None:
    code, out, _ = run(capsys, str(crops), "--model", str(toy_model), "--top", "2")
    header, *rows = out.splitlines()
    assert code == 0 and len(rows) == len(CROPS)
    label, verdict_at, score_end = header.index("label"), header.index("accepted"), header.index("score") + 5
    for row in rows:
        _colour, _size, expected_class, verdict = CROPS[Path(row.split()[0]).name]
        if expected_class is not None:
            assert row[label:].startswith(CLASSES[expected_class].name + " ")
        assert row[verdict_at:].startswith(verdict + " ")
        assert 0 <= float(row[score_end - 6:score_end]) <= 1 and row[score_end] == " "
        assert len(row.split(",")) == 2, "two of the top classes"


def test_json_file_and_table_together(crops: Path, toy_model: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, str(crops / "red.png"), "--model", str(toy_model), "--json", str(target))
    assert code == 0
    assert json_lines(target.read_text())[0]["label"] == "Stop"
    assert "Stop" in out.splitlines()[1]


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8],
                         ids=["empty", "garbage-png"])
def test_corrupt_file_is_one_error_line_and_others_are_classified(crops: Path, toy_model: Path, capsys,
                                                                  content: bytes) -> None:
    (crops / "broken.png").write_bytes(content)
    code, out, err = run(capsys, str(crops), "--model", str(toy_model), "--json", "-")
    assert code == 1
    assert err.count("\n") == 1 and "broken.png" in err and "Traceback" not in err
    assert sorted(Path(r["source"]).name for r in json_lines(out)) == sorted(CROPS)


def test_only_an_unreadable_file_prints_the_error_and_no_table(tmp_path: Path, toy_model: Path, capsys) -> None:
    (tmp_path / "broken.png").write_bytes(b"not an image")
    code, out, err = run(capsys, str(tmp_path / "broken.png"), "--model", str(toy_model))
    assert code == 2 and out == "" and err.count("\n") == 1 and "broken.png" in err


def test_whole_scenes_called_not_a_sign_point_to_detect(crops: Path, toy_model: Path, capsys) -> None:
    # A grey 640x480 "photo" is read whole and turned down; a large red one is still a sign.
    _write_crop(crops / "street.jpg", (128, 128, 128), (640, 480))
    _write_crop(crops / "close-up.jpg", (25, 25, 255), (640, 480))
    code, out, err = run(capsys, str(crops), "--model", str(toy_model), "--json", "-")
    assert code == 0 and len(json_lines(out)) == len(CROPS) + 2
    assert err.splitlines() == ["signcam: note: 1 image of 400 px or more called 'not a sign': classify reads each "
                                "image whole, as one sign; to find the signs in a photo or a video, use "
                                "`signcam detect`"]
    (crops / "street.jpg").unlink()  # the small grey crop alone is no scene
    assert run(capsys, str(crops), "--model", str(toy_model))[2] == ""


def test_a_file_url_names_its_crop(crops: Path, toy_model: Path, capsys) -> None:
    code, out, _ = run(capsys, (crops / "red.png").as_uri(), "--model", str(toy_model), "--json", "-")
    assert code == 0 and [r["label"] for r in json_lines(out)] == ["Stop"]


@pytest.mark.parametrize(("name", "message"), [("nope.png", "nope.png"), ("a" * 300 + ".png", "File name too long")])
def test_missing_path_fails_at_the_end_after_the_rest(crops: Path, toy_model: Path, capsys, name: str,
                                                      message: str) -> None:
    code, out, err = run(capsys, str(crops / name), str(crops / "red.png"), "--model", str(toy_model),
                         "--json", "-")
    assert code == 1 and err.count("\n") == 1 and message in err
    assert [r["label"] for r in json_lines(out)] == ["Stop"]


def test_folders_are_searched_recursively_for_images_only(tmp_path: Path, toy_model: Path, capsys) -> None:
    _write_crop(tmp_path / "a" / "b" / "c" / "deep.png", (25, 25, 255), (30, 30))
    _write_crop(tmp_path / "a" / "top.ppm", (255, 25, 25), (30, 30))
    (tmp_path / "a" / "b" / "notes.txt").write_text("not an image")
    code, out, err = run(capsys, str(tmp_path / "a"), "--model", str(toy_model), "--json", "-")
    assert code == 0 and err == ""
    assert {Path(r["source"]).name: r["class_id"] for r in json_lines(out)} == {"deep.png": STOP, "top.ppm": KEEP_RIGHT}


@pytest.mark.parametrize(("pattern", "names"), [
    ("*.png", {"red.png", "grey.png", "dim-red.png"}),
    ("*red*", {"red.png", "dim-red.png"}),
    ("**/*.jpg", {"blue.jpg", "more.jpg"}),
])
def test_globs(crops: Path, toy_model: Path, capsys, pattern: str, names: set[str]) -> None:
    _write_crop(crops / "sub" / "more.jpg", (255, 25, 25), (30, 30))
    code, out, _ = run(capsys, str(crops / pattern), "--model", str(toy_model), "--json", "-")
    assert code == 0
    assert {Path(r["source"]).name for r in json_lines(out)} == names


def test_glob_matching_nothing_is_an_error(crops: Path, toy_model: Path, capsys) -> None:
    code, out, err = run(capsys, str(crops / "*.gif"), "--model", str(toy_model), "--json", "-")
    assert code != 0 and out == "" and err.count("\n") == 1 and "*.gif" in err


def test_images_are_classified_in_batches_in_order(crops: Path, toy_model: Path, capsys,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classify, "BATCH_SIZE", 3)
    files = [str(_write_crop(crops / "many" / f"{i:02d}.png", (25, 25, 255) if i % 2 else (255, 25, 25), (32, 32)))
             for i in range(8)]
    code, out, _ = run(capsys, *files, "--model", str(toy_model), "--json", "-")
    records = json_lines(out)
    assert code == 0 and [r["source"] for r in records] == files
    assert [r["class_id"] for r in records] == [STOP if i % 2 else KEEP_RIGHT for i in range(8)]


@pytest.mark.parametrize("content", [None, b"", b"\x00garbage" * 100], ids=["missing", "empty", "garbage"])
def test_bad_model_is_one_line_exit_2(crops: Path, tmp_path: Path, capsys, content: bytes | None) -> None:
    model = tmp_path / "model.onnx"
    if content is not None:
        model.write_bytes(content)
    code, out, err = run(capsys, str(crops), "--model", str(model))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("signcam: error:") and str(model) in err
