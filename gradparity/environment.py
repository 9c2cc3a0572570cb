"""The environment fingerprint: everything that can move the numbers of a run."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from gradparity.core.results import Environment


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas() -> str:
    """NumPy's BLAS library and version, as its build configuration records them."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except (KeyError, TypeError, ValueError):
        return "unknown"


def git_commit() -> str | None:
    """The commit of the suite's checkout (with ``+dirty`` when it has changes), or None when
    gradparity runs from an installed copy rather than a git checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def machine() -> dict:
    """What of the fingerprint belongs to the machine: Python, platform, CPU and cores, NumPy and BLAS."""
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
            "cores": os.cpu_count(), "numpy": np.__version__, "blas": numpy_blas()}


def fingerprint(outcomes: dict, device: str, allow_tf32: bool) -> Environment:
    """This machine (``machine``), each backend's version and flags, device, commit; where
    columns ran on other nodes (a Ray cluster: ``BackendOutcome.node``), each column's node and
    each node's own fingerprint, by node label."""
    nodes = {name: o.node["label"] for name, o in outcomes.items() if o.node}
    environments = {label: node_environment(label, outcomes, device, allow_tf32)
                    for label in dict.fromkeys(nodes.values())}
    return Environment(**machine(), **backend_fields(outcomes), device=device, allow_tf32=allow_tf32,
                       git_commit=git_commit(), environments=environments, nodes=nodes)


def backend_fields(outcomes: dict) -> dict:
    """Each backend's framework version and flags, where it said."""
    return {"frameworks": {name: o.version for name, o in outcomes.items() if o.version},
            "flags": {name: o.flags for name, o in outcomes.items() if o.flags}}


def node_environment(label: str, outcomes: dict, device: str, allow_tf32: bool) -> Environment:
    """The fingerprint of the node ``label``: its machine and the columns that ran there."""
    here = {name: o for name, o in outcomes.items() if o.node and o.node["label"] == label}
    node = {key: value for key, value in next(iter(here.values())).node.items() if key not in ("label", "pid")}
    return Environment(**node, **backend_fields(here), device=device, allow_tf32=allow_tf32, git_commit=None)
