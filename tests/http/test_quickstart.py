"""The README's and docs/quickstart.md's curl walkthroughs, run exactly as printed.

Each is run against its own fresh server, started the way the README says: ``todo-http
serve`` with no options, in an empty working directory, so on the default port 8080.
Every ```` ```sh ```` block runs in order with bash (``set -euo pipefail``), its shell
variables carried to the next block, and must exit 0; each ``# expect: TEXT`` comment
line in a block names text that the block's output must contain, ``$NAME`` in it being
the shell variable's value after the block. Blocks of any other language (``console``
for installing and starting the server) are not run.

The quickstart also runs after the README's walkthrough, on the same server and
database, as a reader who follows the README's link to it does.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.http.server_process import ServerProcess, server_environment

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"
README = ROOT / "README.md"
DEFAULT_PORT = 8080

_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_EXPECT = "# expect: "
_VARIABLE = re.compile(r"\$(\w+)")


def sh_blocks(markdown: str) -> list[str]:
    """The ```sh blocks of ``markdown``, in order."""
    return _SH_BLOCK.findall(markdown)


def expectations(block: str) -> list[str]:
    return [
        line.strip()[len(_EXPECT) :]
        for line in block.splitlines()
        if line.strip().startswith(_EXPECT)
    ]


def expanded(expectation: str, variables: Mapping[str, str]) -> str:
    """``expectation`` with each ``$NAME`` replaced by that variable's value."""
    return _VARIABLE.sub(lambda match: variables[match[1]], expectation)


def _variables(dump: Path) -> dict[str, str]:
    """The environment that ``env -0`` wrote to ``dump``."""
    entries = dump.read_bytes().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def _todo_http_script() -> Path:
    # The script installed next to this interpreter: the one `pip install .` made.
    script = Path(sys.executable).parent / "todo-http"
    if not script.exists():
        pytest.fail(f"{script} is missing: install the package (pip install -e .)")
    return script


@pytest.fixture
def default_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """``todo-http serve`` as the README starts it, in an empty working directory."""
    if shutil.which("curl") is None or shutil.which("bash") is None:
        message = "the walkthrough tests need curl and bash on PATH"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError as error:
            message = f"port {DEFAULT_PORT}, which the walkthroughs use, is taken: {error}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    workdir = tmp_path / "server"
    workdir.mkdir()
    command = (str(_todo_http_script()),)
    with ServerProcess(
        cwd=workdir, port=DEFAULT_PORT, command=command, port_option=False
    ) as server:
        server.wait_ready()
        assert (workdir / "todo.db").is_file()
        yield server
        status, _seconds = server.stop()
        assert status == 0, server.output


def run_walkthrough(blocks: list[str], tmp_path: Path) -> None:
    """Run ``blocks`` in order as described in this module's docstring."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "shell-state.sh"
    state.write_text("")
    dump = tmp_path / "shell-variables"
    shell = tmp_path / "shell"
    shell.mkdir(exist_ok=True)
    for number, block in enumerate(blocks, start=1):
        # allexport, so every variable a block sets is written out for the next one.
        script = (
            f"set -a\n. {state}\nset -euo pipefail\n{block}\nexport -p > {state}\nenv -0 > {dump}\n"
        )
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=shell,
            env=server_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        where = f"block {number}:\n{block}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode == 0, where
        variables = _variables(dump)
        for expected in expectations(block):
            expected = expanded(expected, variables)
            assert expected in result.stdout, f"{expected!r} not printed by {where}"


def test_quickstart_runs_as_printed(default_server: ServerProcess, tmp_path: Path) -> None:
    blocks = sh_blocks(QUICKSTART.read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    run_walkthrough(blocks, tmp_path)
    assert "Traceback" not in default_server.output


def test_readme_walkthrough_runs_as_printed(default_server: ServerProcess, tmp_path: Path) -> None:
    blocks = sh_blocks(README.read_text(encoding="utf-8"))
    assert any("curl" in block for block in blocks), "README.md has no ```sh curl walkthrough"
    run_walkthrough(blocks, tmp_path)
    assert "Traceback" not in default_server.output


def test_the_quickstart_runs_after_the_readme_walkthrough(
    default_server: ServerProcess, tmp_path: Path
) -> None:
    """The README links to the quickstart; its reader still has the server and the task
    it made ("Buy milk", in ./todo.db), which the quickstart's lists must not count."""
    run_walkthrough(sh_blocks(README.read_text(encoding="utf-8")), tmp_path / "readme")
    run_walkthrough(sh_blocks(QUICKSTART.read_text(encoding="utf-8")), tmp_path / "quickstart")
    assert "Traceback" not in default_server.output


def test_expectations_fill_in_shell_variables() -> None:
    assert (
        expanded("Location: /api/$ME/tasks/", {"ME": "alice-1"}) == "Location: /api/alice-1/tasks/"
    )
    assert expanded('"title":"Buy milk"', {}) == '"title":"Buy milk"'


def test_the_quickstart_reaches_every_endpoint() -> None:
    text = "\n".join(sh_blocks(QUICKSTART.read_text(encoding="utf-8")))
    for needle in (
        '-X POST "$BASE/tasks"',
        'curl -s "$BASE/tasks?completed=true"',
        "cursor=$CURSOR",
        'curl -s -i "$BASE/tasks/$TASK_ID"',
        "If-None-Match: $ETAG",
        '-X PUT "$BASE/tasks/$TASK_ID"',
        '-X PATCH "$BASE/tasks/$TASK_ID"',
        "If-Match:",
        '-X DELETE "$BASE/tasks/$TASK_ID"',
        "/healthz",
        "/readyz",
        "/api/openapi.json",
        "/api/docs",
    ):
        assert needle in text, needle


def test_every_block_expects_something() -> None:
    for block in sh_blocks(QUICKSTART.read_text(encoding="utf-8")):
        if "curl" in block:
            assert expectations(block), block
