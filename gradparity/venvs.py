"""Environments for backends pinned to a version (``gradparity run --backends jax==0.4.30,jax``):
one Python environment per requirement set, made with uv and kept under the cache folder
(``$GRADPARITY_CACHE_DIR/envs``), holding the pinned framework, the backend's other
requirements, gradparity itself (from where this one was installed: the same source folder for
an editable install) and, for a plugin's backend, the plugin's package. The backend's worker is
started with that environment's interpreter and speaks the same protocol over the same pipes.

An environment is keyed by its requirement set and the Python version (``Recipe.key``): a
second run finds it ready and starts at once. It is built in a folder of its own and renamed into
place only when complete, so an interrupted build leaves nothing that looks ready."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from gradparity.backends import BackendEntry
from gradparity.backends.layout import cache_directory
from gradparity.core.errors import GradparityError

READY = "gradparity-environment.json"  # written last: an environment without it is incomplete
MESSAGE = 600  # characters of uv's reason kept
UV_HINT = "uv is not installed (pip install 'gradparity[versions]')"
Announce = Callable[[str], None]


class EnvironmentBuildError(GradparityError):
    """An environment that could not be made: the one line uv gave for it."""


@dataclass(frozen=True)
class Recipe:
    """What an environment holds: uv's install arguments (requirements, ``-e FOLDER`` for an
    editable source) and the Python that runs it (version and machine)."""

    requirements: tuple[str, ...]
    python: str

    def key(self) -> str:
        """SHA-256 (first 12 hex digits) of the requirements and the Python."""
        return hashlib.sha256(json.dumps([self.requirements, self.python]).encode()).hexdigest()[:12]


def recipe(entry: BackendEntry) -> Recipe:
    """The environment a pinned ``entry`` needs: its pinned framework, its other requirements,
    gradparity and, for a plugin, the plugin's package, each from where it is installed here."""
    others = [package for package in entry.requires if package != entry.framework]
    packages = ["gradparity"] + ([entry.origin.split()[0]] if entry.origin != "gradparity" else [])
    sources = [argument for package in packages for argument in source_of(package)]
    python = f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}"
    return Recipe((str(entry.pinned), *others, *sources), python)


def source_of(package: str) -> list[str]:
    """uv's install arguments for ``package`` as it is installed here: ``-e FOLDER`` for an
    editable install, its URL for one from a folder or file, else ``package==version``. The
    install that records where it came from (``direct_url.json``) is preferred to one found
    earlier on ``sys.path`` that does not, such as the ``.egg-info`` setuptools leaves in a
    source folder that is the current directory."""
    installs = list(importlib.metadata.distributions(name=package)) or [importlib.metadata.distribution(package)]
    distribution = next((install for install in installs if install.read_text("direct_url.json")), installs[0])
    origin = json.loads(distribution.read_text("direct_url.json") or "null")
    if origin is None:
        return [f"{distribution.name}=={distribution.version}"]
    if origin.get("dir_info", {}).get("editable"):
        return ["-e", origin["url"].removeprefix("file://")]
    return [f"{distribution.name} @ {origin['url']}"]


def folder() -> Path:
    """Where the environments are kept: ``envs`` in the cache folder (a temporary folder for
    this process when the cache is ``off``)."""
    return cache_directory("envs") or Path(tempfile.gettempdir()) / f"gradparity-envs-{os.getpid()}"


def location(entry: BackendEntry, recipe_: Recipe) -> Path:
    """The folder of ``entry``'s environment: its requirement, readable, and the recipe's key."""
    return folder() / f"{re.sub(r'[^A-Za-z0-9.]+', '-', str(entry.pinned))}-{recipe_.key()}"


def uv() -> str:
    """The uv executable: the ``uv`` package's, else one on PATH."""
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
    if found is None:
        raise EnvironmentBuildError(UV_HINT)
    return found


def on_stderr(line: str) -> None:
    """A line of progress that is not a case's (making an environment), on stderr."""
    print(f"gradparity: {line}", file=sys.stderr, flush=True)


def prepared(entries: dict[str, BackendEntry], announce: Announce = on_stderr) -> dict[str, BackendEntry]:
    """``entries`` with every pinned one given its environment's interpreter, the environment
    made first where it is not ready; one that cannot be made is refused with uv's reason."""
    ready = {}
    for name, entry in entries.items():
        if entry.pinned and not entry.refused:
            try:
                entry = replace(entry, interpreter=str(environment(entry, announce) / "bin" / "python"))
            except EnvironmentBuildError as error:
                entry = replace(entry, refused=f"{entry.pinned}: {error}")
        ready[name] = entry
    return ready


def environment(entry: BackendEntry, announce: Announce) -> Path:
    """The ready environment of a pinned ``entry``, made now (with progress) where it is not."""
    recipe_ = recipe(entry)
    target = location(entry, recipe_)
    if (target / READY).exists():
        return target
    announce(f"{entry.pinned}: making its environment with uv (first use; kept in {target})")
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(building, recipe_, announce)
        (building / READY).write_text(json.dumps(
            {"requirement": entry.pinned, "requirements": recipe_.requirements, "python": recipe_.python,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "seconds": round(time.monotonic() - started, 1)}, indent=1) + "\n")
        try:
            building.rename(target)
        except OSError:  # another process made it meanwhile
            if not (target / READY).exists():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    announce(f"{entry.pinned}: environment ready in {time.monotonic() - started:.1f} s")
    return target


def build(target: Path, recipe_: Recipe, announce: Announce) -> None:
    """``uv venv`` at ``target`` for this Python, then ``uv pip install`` of the recipe, each
    line uv prints passed to ``announce``; a failure raises with uv's reason."""
    executable = uv()
    for command in ([executable, "venv", "--quiet", "--python", sys.executable, str(target)],
                    [executable, "pip", "install", "--python", str(target / "bin" / "python"),
                     *recipe_.requirements]):
        lines = []
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=os.environ | {"NO_COLOR": "1"}) as process:
            for line in process.stdout or ():
                lines.append(line.rstrip())
                if line.strip() and not line.startswith((" + ", "Using Python")):
                    announce(f"  uv: {line.strip()}")
        if process.returncode:
            raise EnvironmentBuildError(reason(lines))


def reason(lines: list[str]) -> str:
    """uv's reason for a failure on one line: from its first ``error:`` (or ``×``) line on,
    each line without its marker (``error:``, ``cause:``, ``╰─▶``), the first followed by a
    colon; its last line where it marked none."""
    said = [line.strip() for line in lines if line.strip()]
    start = next((index for index, line in enumerate(said) if line.startswith(("error:", "×"))), None)
    if start is None:
        return said[-1][:MESSAGE] if said else "uv failed without a message"
    head, *rest = (re.sub(r"^(error:|×|╰─▶|cause:)\s*", "", line) for line in said[start:])
    return (f"{head}: {' '.join(rest)}" if rest else head)[:MESSAGE]


@dataclass(frozen=True)
class Kept:
    """An environment in the cache folder: its folder, the requirement it pins, what it holds,
    its Python, when it was made and how long that took."""

    path: Path
    requirement: str
    requirements: list[str]
    python: str
    created: str
    seconds: float

    def named(self, names: list[str]) -> bool:
        """Whether ``names`` holds its requirement or its folder's name."""
        return self.requirement in names or self.path.name in names

    def size(self) -> int:
        """Its bytes on disk."""
        return sum(file.lstat().st_size for file in self.path.rglob("*"))


def kept() -> list[Kept]:
    """Every ready environment in the cache folder, by folder name."""
    found = []
    for path in sorted(folder().glob("*/" + READY)):
        record = json.loads(path.read_text())
        found.append(Kept(path.parent, record["requirement"], record["requirements"], record["python"],
                          record["created"], record["seconds"]))
    return found


def clear(names: list[str]) -> list[Path]:
    """Remove the environments whose requirement or folder name is in ``names`` (every one,
    and any left incomplete, when ``names`` is empty); returns the folders removed. A name that
    no environment has is refused before anything is removed."""
    if names:
        environments = kept()
        unknown = [name for name in names if not any(environment_.named([name]) for environment_ in environments)]
        if unknown:
            raise GradparityError(f"no environment {unknown[0]!r} to clear; gradparity envs list shows them")
        chosen = [environment_.path for environment_ in environments if environment_.named(names)]
    else:
        chosen = [path for path in folder().glob("*") if path.is_dir()] if folder().exists() else []
    for path in chosen:
        shutil.rmtree(path)
    return chosen
