"""The README's library example runs exactly as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def test_the_library_example_runs_as_printed(tmp_path: Path) -> None:
    """The README's ```python block runs to completion in a fresh interpreter."""
    blocks = _PYTHON_BLOCK.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "README.md should hold exactly one ```python example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_library_guide_example_runs(tmp_path: Path) -> None:
    """docs/library.md's ```python example runs to completion too."""
    guide = README.parent / "docs" / "library.md"
    blocks = _PYTHON_BLOCK.findall(guide.read_text(encoding="utf-8"))
    assert blocks, "docs/library.md should hold a ```python example"
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
