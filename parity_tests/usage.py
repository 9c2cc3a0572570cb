"""The one way tests meet bad input: the installed ``gradparity`` command, run from a folder
as a user types it, refuses it in one line on stderr with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GRADPARITY = Path(sys.executable).with_name("gradparity")  # the installed entry point


def refused(folder: Path, args: list[str], named: str) -> str:
    """The stderr line of ``gradparity ARGS`` run in ``folder``, after asserting that it is a
    refusal: exit status 2, nothing on stdout, exactly one line on stderr, no traceback, and
    ``named`` (the offending value or option) in that line."""
    done = subprocess.run([str(GRADPARITY), *args], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("gradparity: error: ") and named in lines[0], (named, lines[0])
    return lines[0]
