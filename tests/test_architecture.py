"""Design boundaries that import-linter cannot express: the router uses the standard library
only, and no I/O modules at all (time is an input)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {"asyncio", "socket", "threading", "subprocess", "multiprocessing", "selectors",
              "ssl", "http", "urllib", "sqlite3", "os", "shutil", "io", "time"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_routing_is_pure_standard_library() -> None:
    files = sorted((ROOT / "routing").rglob("*.py"))
    assert files, "routing/ has no modules"
    for path in files:
        for mod in imported_roots(path) - {"routing", "__future__"}:
            assert mod in sys.stdlib_module_names, f"{path.name} imports non-stdlib {mod}"
            assert mod not in IO_MODULES, f"{path.name} imports I/O module {mod}"


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        if path.name == "settings.py" and path.parent.name == "hub":
            continue
        text = path.read_text()
        if "os.environ" in text or "os.getenv" in text or "getenv(" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
