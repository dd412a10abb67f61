"""`signcam bench`: the figures it reports are there and consistent (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from signcam import cli
from signcam.classifier import DEFAULT_MODEL, Classifier
from signcam.commands import bench
from signcam.commands.bench import bench_classifier, bench_pipeline
from signcam.detection import Detection
from signcam.errors import SourceError
from signcam.pipeline import Engine
from signcam.sinks import VideoSink


class StillSign:
    """A recognizer that sees one sign in every frame."""

    conf = 0.5
    timings_ms = {"proposals": 1.0, "classify": 1.0}

    def __call__(self, image: np.ndarray, keep_rejected: bool = False,
                 windows: np.ndarray | None = None) -> list[Detection]:
        return [Detection((10, 10, 40, 40), 14, 0.9)]


def _clip(path: Path, frames: int) -> Path:
    with VideoSink(path, 25.0) as sink:
        for i in range(frames):
            sink.write(np.full((120, 160, 3), i * 10 % 255, np.uint8))
    return path


@pytest.mark.parametrize("loop", [False, True])
def test_pipeline_figures_cover_every_stage_and_loop_reaches_the_frame_count(tmp_path: Path, loop: bool) -> None:
    clip = _clip(tmp_path / "clip.avi", 12)
    report = bench_pipeline(str(clip), Engine(StillSign()), frames=30, loop=loop)
    assert report["frames"] == (30 if loop else 12) and report["frame_size"] == [160, 120]
    assert set(report["stage_ms_median"]) == {"decode", "proposals", "classify", "track", "overlay"}
    assert report["latency_ms_median"] <= report["latency_ms_p95"]
    assert report["ratio_to_decode"] == pytest.approx(report["pipeline_fps"] / report["decode_only_fps"], rel=0.01)
    # The sign stays in view, so whole frames are searched every 3rd frame only: 0, 3, 6, ...
    assert report["scan_every"] == 3 and report["frames_searched_whole"] == -(-report["frames"] // 3)
    frames_seen = [n for n, _ in report["rss_mb"]]
    assert frames_seen[0] == 0 and frames_seen[-1] == report["frames"] and frames_seen == sorted(set(frames_seen))


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="shipped model not built")
def test_classifier_figures() -> None:
    report = bench_classifier(Classifier(), batch=32, repeats=3, singles=5)
    assert report["batch"] == 32 and report["crops_per_s_median"] > 0
    assert 0 < report["single_crop_ms_median"] <= report["single_crop_ms_p95"]


def test_a_wrong_source_fails_before_the_classifier_is_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    def timed(*_args, **_kwargs):
        raise AssertionError("the classifier was timed before the source was checked")

    monkeypatch.setattr(bench, "bench_classifier", timed)
    assert cli.main(["bench", str(tmp_path / "missing.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_an_unwritable_json_fails_before_the_classifier_is_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    def timed(*_args, **_kwargs):
        raise AssertionError("the classifier was timed before --json was checked")

    monkeypatch.setattr(bench, "bench_classifier", timed)
    target = tmp_path / "missing" / "bench.json"
    assert cli.main(["bench", "--no-pipeline", "--json", str(target)]) == 2
    assert capsys.readouterr().err == f"signcam: error: cannot write {target}: its folder does not exist\n"


@pytest.mark.parametrize("target", ["source", "model", "DEFAULT_MODEL", "DEFAULT_DETECTOR", "DEFAULT_COARSE_DETECTOR"])
def test_json_over_a_file_the_run_reads_is_refused_before_it_is_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, target: str) -> None:
    """The video, the --model or the shipped classifier, and the finders; the shipped ones stand in tmp_path."""
    def timed(*_args, **_kwargs):
        raise AssertionError("the classifier was timed")

    monkeypatch.setattr(bench, "bench_classifier", timed)
    clip = _clip(tmp_path / "clip.avi", 3)
    read = clip if target == "source" else tmp_path / f"{target}.onnx"
    if target != "source":
        read.write_bytes(b"a model")
    if target.startswith("DEFAULT_"):
        monkeypatch.setattr(f"signcam.{'classifier' if target == 'DEFAULT_MODEL' else 'proposals'}.{target}", read)
    before = read.read_bytes()
    model = ["--model", str(read)] if target == "model" else []
    assert cli.main(["bench", str(clip), *model, "--json", str(read)]) == 2
    assert capsys.readouterr().err == (f"signcam: error: --json {read} would overwrite the input {read}: "
                                       "write somewhere else\n")
    assert read.read_bytes() == before


@pytest.mark.parametrize("failure", [SourceError("clip.avi stopped after 3 of 12 frames"), KeyboardInterrupt()])
def test_a_run_that_fails_or_is_stopped_leaves_an_earlier_report_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        failure: BaseException) -> None:
    report = tmp_path / "bench.json"
    report.write_text("the last report\n")

    def run(*_args, **_kwargs):
        assert report.read_text() == "the last report\n"  # not emptied while the run times
        raise failure

    monkeypatch.setattr(bench, "_run", run)
    status = cli.main(["bench", "--no-pipeline", "--json", str(report)])
    assert status == (130 if isinstance(failure, KeyboardInterrupt) else 2)
    assert report.read_text() == "the last report\n" and [p.name for p in tmp_path.iterdir()] == ["bench.json"]


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="shipped model not built")
def test_json_report_holds_the_printed_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(bench, "bench_classifier", lambda classifier: {
        "batch": 256, "crops_per_s_median": 8000, "single_crop_ms_median": 0.2, "single_crop_ms_p95": 0.3})
    assert cli.main(["bench", "--no-pipeline", "--json", str(tmp_path / "bench.json")]) == 0
    assert json.loads((tmp_path / "bench.json").read_text())["classifier"]["crops_per_s_median"] == 8000
    assert capsys.readouterr().out.startswith("classifier: 8000 crops/s (batch 256)")
    assert cli.main(["bench", "--no-pipeline", "--json", "-"]) == 0  # the JSON alone on stdout, for `| jq`
    out, err = capsys.readouterr()
    assert json.loads(out)["classifier"]["crops_per_s_median"] == 8000 and err.startswith("classifier: 8000")


@pytest.mark.parametrize("frames", ["0", "-1"])
def test_frames_must_be_positive(frames: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--frames", frames])
    assert exit_info.value.code == 2 and "must be 1 or more" in capsys.readouterr().err


def test_a_source_with_no_readable_frame_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="gave no frame to time"):
        bench_pipeline(str(tmp_path), Engine(StillSign()), frames=5, loop=False)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="assets/signnet.onnx not built")
@pytest.mark.parametrize("loop", [False, True])
def test_a_source_shorter_than_frames_says_loop_would_time_them_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, loop: bool) -> None:
    monkeypatch.setattr(bench, "bench_classifier", lambda classifier: {
        "batch": 256, "crops_per_s_median": 8000, "single_crop_ms_median": 0.2, "single_crop_ms_p95": 0.3})
    clip = _clip(tmp_path / "short.mp4", 3)
    assert cli.main(["bench", str(clip), "--frames", "5", *(["--loop"] if loop else [])]) == 0
    out = capsys.readouterr().out
    assert ("5 frames)" if loop else "3 frames)") in out
    assert ("has only 3 frame(s); --loop repeats them to time 5" in out) is not loop
