"""After the demo a newcomer is told the exact next commands, in a form their shell can run (issue 20):
``tgwatch`` lives in ``.venv/bin``, so a bare ``tgwatch`` would be "command not found"."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from crawler.demo import next_steps, tgwatch_command

TGWATCH = Path(sys.executable).parent / "tgwatch"


def test_the_command_is_the_one_the_shell_can_run(tmp_path: Path) -> None:
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    program = venv_bin / "tgwatch"
    program.write_text("")
    assert tgwatch_command(str(program), tmp_path, None) == ".venv/bin/tgwatch"
    assert tgwatch_command(str(program), tmp_path, str(program)) == "tgwatch", "activated: plain tgwatch"
    assert tgwatch_command(str(program), tmp_path / "elsewhere", None) == str(program.resolve())
    lines = next_steps(".venv/bin/tgwatch", tmp_path / ".tgwatch", tmp_path)
    text = "\n".join(lines)
    assert ". .venv/bin/activate" in text and "  .venv/bin/tgwatch serve " in text
    assert "--data-dir" not in text and "http://127.0.0.1:8080/console/" in text
    assert "tokens create --name me --role monitor" in text
    other = "\n".join(next_steps("tgwatch", tmp_path / "d", tmp_path))
    assert f"  tgwatch --data-dir {tmp_path / 'd'} db status" in other and "activate" not in other


def test_the_demo_ends_with_commands_that_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env["PATH"] = "/usr/bin:/bin"  # a fresh shell: the venv is not on the PATH
    proc = subprocess.run(
        [str(TGWATCH), "demo", "--quick"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    tail = proc.stdout.split("== next steps ==", 1)[1]
    commands = [line.split("  #", 1)[0].strip() for line in tail.splitlines() if line.startswith("  ")]
    assert commands[0].startswith(str(TGWATCH.resolve())) and commands[0].endswith("--channel tgwatch_demo")
    assert any(c.endswith("tokens create --name me --role monitor") for c in commands)
    assert "activate" in tail and "/console/" in tail
    query = subprocess.run(shlex.split(commands[0]), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert query.returncode == 0 and "tgwatch_demo/2" in query.stdout, query.stderr[-2000:]
