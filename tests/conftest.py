"""Shared fixtures: the real data under $SIGNCAM_DATA, and Qt set up to run offscreen."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATA_ENV = "SIGNCAM_DATA"


def _data_dir() -> Path:
    """$SIGNCAM_DATA, or a skip; in CI (CI=true) missing data is a failure, not a skip."""
    value = os.environ.get(DATA_ENV)
    reason = None
    if not value:
        reason = f"{DATA_ENV} is not set (point it at the shared data folder, e.g. ../shared/data)"
    elif not Path(value).is_dir():
        reason = f"{DATA_ENV}={value} is not a folder"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the real data: {reason}")
        pytest.skip(reason)
    return Path(value)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _data_dir()


@pytest.fixture(scope="session")
def gtsdb_dir(data_dir: Path) -> Path:
    path = data_dir / "gtsdb-train"
    if not (path / "gt.txt").is_file():
        pytest.fail(f"{path}/gt.txt missing from {DATA_ENV}")
    return path


@pytest.fixture(scope="session")
def gtsrb_root(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GTSRB extracted once per test session into a temporary folder (torchvision layout)."""
    archive = data_dir / "gtsrb-32.tar.xz"
    if not archive.is_file():
        pytest.fail(f"{archive} missing from {DATA_ENV}")
    root = tmp_path_factory.mktemp("gtsrb")
    subprocess.run(["tar", "xJf", str(archive), "-C", str(root)], check=True)
    return root
