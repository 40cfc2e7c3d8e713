"""The committed widget build is what the sources produce, stays small and keeps its notices."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

WIDGET = Path(__file__).resolve().parents[2] / "widget" / "visitor"
GZIP_BUDGET = 25 * 1024


def test_dist_is_fresh(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (WIDGET / "node_modules" / "esbuild").is_dir():
        pytest.fail(
            "node and widget/visitor/node_modules are needed: run `bash tests/servers/browser.sh`"
        )
    subprocess.run([node, "build.mjs", str(tmp_path)], cwd=WIDGET, check=True, timeout=60)
    for name in ("loader.js", "THIRD_PARTY_LICENSES.txt", "demo.html"):
        assert (tmp_path / name).read_bytes() == (WIDGET / "dist" / name).read_bytes(), (
            f"widget/visitor/dist/{name} is stale: run `npm run build` in widget/visitor"
        )


def test_loader_is_small_and_keeps_the_license_notices() -> None:
    loader = (WIDGET / "dist" / "loader.js").read_bytes()
    size = len(gzip.compress(loader, compresslevel=9))
    print(f"widget_gzip_bytes={size}")
    assert size < GZIP_BUDGET
    assert b"MIT License" in loader[:600] and b"Socket.IO" in loader[:600]
    notices = (WIDGET / "dist" / "THIRD_PARTY_LICENSES.txt").read_text()
    assert "Permission is hereby granted" in notices
