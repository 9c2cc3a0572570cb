"""The thorough profile on the local runner and on a two-node Ray cluster on loopback:

    python scripts/ray_timing.py [--networks 300] [--repeats 1] [--backends LIST] [--kill-after SECONDS]
                                 [--timeout SECONDS]

runs ``generated_cases(NETWORKS, dtype)`` in float64 and float32 through every installed backend
(or ``--backends``) twice through the Python API: with the local runner, and with
``executor="ray"`` on a cluster of two nodes that this script starts on this machine (``ray start
--head`` and ``ray start --address``, half the cores each) and stops at the end, on an error or
Ctrl-C too. Prints each run's wall seconds, their ratio, each backend's seconds, the node that ran
each column, and whether the two documents agree (the same statuses and numbers for every
result; timing fields aside). Both runs compile from nothing: the compile cache is off
(``GRADPARITY_CACHE_DIR=off``), else the second run would read the programs the first one
compiled (JAX's, one per network shape). Each backend may take ``--timeout`` seconds (default
7200: the local runner's default 600 s stops keras-jax midway). With ``--repeats R`` the runs alternate local, Ray, local, ...,
and the median and range are printed. With ``--kill-after S`` a thread kills one
``ray::BackendActor`` process S seconds into each Ray run; the run must then still have no
result that is an error, and its ``run.restarts`` says which column was restarted.

Only the cluster's own processes are stopped (those of the two ``ray start`` sessions), not
with ``ray stop``, which stops every Ray process on the machine. The cluster uses token
authentication with a token of its own, in its temporary folder."""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradparity
from gradparity.backends import entry, known, missing_requirement
from gradparity.backends.layout import CACHE_VARIABLE
from gradparity.core.cases import Case
from gradparity.core.generated import generated_cases
from gradparity.core.network import DTYPES
from gradparity.core.results import Document

RAY = str(Path(sys.executable).with_name("ray"))
ACTOR_TITLE = "ray::BackendActor"
TIMING_KEYS = ("seconds", "_s")  # a result's key that ends so is a time, not a number of the run
STOP_SECONDS = 10


def installed_backends(requested: str | None) -> list[str]:
    """The backends to time: every installed one (a plugin's included), or those of the
    comma-separated ``requested``, each of which must be installed."""
    installed = [name for name in known() if missing_requirement(entry(name)) is None]
    if requested is None:
        return installed
    names = [name.strip() for name in requested.split(",") if name.strip()]
    missing = [name for name in names if name not in installed]
    if missing:
        sys.exit(f"not installed here: {', '.join(missing)} (installed: {', '.join(installed)})")
    return names


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_processes(sessions: set[int]) -> list[int]:
    """The live processes whose session is one of ``sessions`` (read from /proc/PID/stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, _, session = stat.read_text().rpartition(")")[2].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) in sessions and state != "Z":
            found.append(int(stat.parent.name))
    return found


def stop(sessions: set[int]) -> None:
    """Kill every process of ``sessions`` (SIGKILL, as ``ray stop --force`` does, but only
    these) and wait up to ``STOP_SECONDS`` for them to go."""
    deadline = time.monotonic() + STOP_SECONDS
    while (left := session_processes(sessions)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    if left:
        print(f"warning: Ray processes still running: {left}", file=sys.stderr)


@dataclass
class Cluster:
    """A Ray cluster this script started: its address and the sessions of its ``ray start``
    processes, which every process of the cluster belongs to."""

    address: str
    sessions: set[int] = field(default_factory=set)


@contextmanager
def two_node_cluster(cpus: int) -> Iterator[Cluster]:
    """A Ray cluster of two nodes on this machine, ``cpus`` CPUs each, with a temporary folder
    and an authentication token of its own (this process uses them too, so that
    ``gradparity.run`` can join it: before Ray is imported, which reads ``RAY_AUTH_MODE`` once);
    stopped, and its folder removed, on the way out."""
    folder = Path(tempfile.mkdtemp(prefix="gradparity-ray-"))
    token = folder / "auth_token"
    token.write_text(secrets.token_hex(32))
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    port = free_port()
    cluster = Cluster(f"127.0.0.1:{port}")
    common = ["--num-cpus", str(cpus), "--temp-dir", str(folder), "--disable-usage-stats"]
    try:
        for command in ([RAY, "start", "--head", "--port", str(port), "--include-dashboard=false"],
                        [RAY, "start", "--address", cluster.address]):
            started = subprocess.Popen([*command, *common], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, start_new_session=True)
            cluster.sessions.add(started.pid)
            output, _ = started.communicate()
            if started.returncode != 0:
                raise RuntimeError(f"{' '.join(command[1:3])} failed ({started.returncode}):\n{output}")
        yield cluster
    finally:
        stop(cluster.sessions)
        shutil.rmtree(folder, ignore_errors=True)


def actor_processes(cluster: Cluster) -> dict[int, str]:
    """The cluster's processes whose command line starts with ``ray::BackendActor``, with their title."""
    found = {}
    for pid in session_processes(cluster.sessions):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if title.startswith(ACTOR_TITLE):
            found[pid] = title
    return found


def kill_one_actor(cluster: Cluster, after: float, cancelled: threading.Event) -> None:
    """Wait ``after`` seconds (unless ``cancelled``), then SIGKILL one of the cluster's
    ``ray::BackendActor`` processes, one answering a case where there is one (its title is
    ``ray::BackendActor.case``), and say which."""
    if cancelled.wait(after):
        return
    actors = actor_processes(cluster)
    if not actors:
        print(f"  kill: no {ACTOR_TITLE} process after {after:g} s", flush=True)
        return
    busy = [pid for pid, title in actors.items() if title.startswith(f"{ACTOR_TITLE}.case")]
    pid = min(busy or actors)  # one answering a case, where one is
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        print(f"  kill: {pid} ({actors[pid]}) ended before it could be killed", flush=True)
        return
    print(f"  kill: SIGKILL to {pid} ({actors[pid]}) after {after:g} s", flush=True)


def timed_run(cases: list[Case], options: gradparity.RunOptions, kill: tuple[Cluster, float] | None = None
              ) -> tuple[float, Document]:
    """One ``gradparity.run``: its wall seconds and its document; with ``kill = (cluster,
    seconds)``, one of the cluster's actors is killed that many seconds in."""
    cancelled = threading.Event()
    if kill is not None:
        threading.Thread(target=kill_one_actor, args=(*kill, cancelled), daemon=True).start()
    started = time.perf_counter()
    try:
        document = gradparity.run(cases, options)
    finally:
        cancelled.set()
    return time.perf_counter() - started, document


def without_timing(value: Any) -> Any:
    """``value`` (a document's data) with every key that holds a time left out."""
    if isinstance(value, dict):
        return {key: without_timing(item) for key, item in value.items() if not key.endswith(TIMING_KEYS)}
    if isinstance(value, list):
        return [without_timing(item) for item in value]
    return value


def differences(local: Any, ray: Any, path: str = "") -> list[str]:
    """The paths at which two documents' data differ (NaN equals NaN)."""
    if isinstance(local, dict) and isinstance(ray, dict):
        return [found for key in dict.fromkeys([*local, *ray])
                for found in differences(local.get(key, "<absent>"), ray.get(key, "<absent>"),
                                                 f"{path}.{key}" if path else key)]
    if isinstance(local, list) and isinstance(ray, list) and len(local) == len(ray):
        return [found for index, pair in enumerate(zip(local, ray)) for found in differences(*pair, f"{path}[{index}]")]
    if isinstance(local, float) and isinstance(ray, float) and math.isnan(local) and math.isnan(ray):
        return []
    return [] if local == ray else [path]


def results_by_case(document: Document) -> dict[str, Any]:
    """A document's results, timing aside, keyed ``case dtype``."""
    return {f"{result.case} {result.dtype}": without_timing(result.to_dict()) for result in document.results}


def summary(values: list[float], digits: int = 1) -> str:
    """``median (min-max)``, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(backends: list[str], runs: dict[str, list[tuple[float, Document]]]) -> None:
    """Wall seconds and their ratio, each backend's seconds and node."""
    local, ray = ([seconds for seconds, _ in runs[name]] for name in ("local", "ray"))
    ratios = [on_ray / here for here, on_ray in zip(local, ray)]
    print(f"wall seconds: local {summary(local)}, ray {summary(ray)}; ray/local {summary(ratios, 2)}")
    nodes = runs["ray"][-1][1].environment.nodes
    print("| backend | local s | ray s | node |")
    print("|---|---|---|---|")
    for name in backends:
        seconds = {kind: [document.run.backend_seconds.get(name, math.nan) for _, document in runs[kind]]
                   for kind in ("local", "ray")}
        print(f"| {name} | {summary(seconds['local'])} | {summary(seconds['ray'])} | {nodes.get(name, '?')} |")


def agreement(label: str, local: Document, ray: Document) -> bool:
    """Print whether the two documents have the same statuses and numbers for every result
    (after ``label``); True if so."""
    ours, theirs = results_by_case(local), results_by_case(ray)
    differing = differences(ours, theirs)
    if not differing:
        counts = local.summary
        print(f"{label}: documents agree: {len(ours)} results, the same statuses and numbers ({counts.passed} pass, "
              f"{counts.known_deviations} known deviation, {counts.failed} fail, {counts.errors} error)")
        return True
    print(f"{label}: documents differ at {len(differing)} keys:")
    for path in differing[:40]:
        print(f"  {path}")
    return False


def errors(document: Document) -> list[str]:
    """``case dtype backend: reason`` of each result that is an error."""
    return [f"{result.case} {result.dtype} {name}: {backend.reason}" for result in document.results
            for name, backend in result.backends.items() if backend.status == "error"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=300, help="generated networks per dtype")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", help="comma-separated (default: every installed backend)")
    parser.add_argument("--kill-after", type=float, metavar="SECONDS",
                        help="SIGKILL one ray::BackendActor this long into each Ray run")
    parser.add_argument("--timeout", type=float, default=7200.0, metavar="SECONDS",
                        help="per backend, in both runs (the thorough profile takes keras-jax longer than the "
                             "default 600 s on 2 cores)")
    args = parser.parse_args()
    os.environ[CACHE_VARIABLE] = "off"  # before the cluster starts: its actors read it too
    if not Path(RAY).exists():
        sys.exit(f"no {RAY}: pip install 'gradparity[ray]'")
    backends = installed_backends(args.backends)
    cases = [case for dtype in DTYPES for case in generated_cases(args.networks, dtype)]
    cpus = max(1, (os.cpu_count() or 2) // 2)
    print(f"{len(cases)} cases ({args.networks} networks x {len(DTYPES)} dtypes) on {', '.join(backends)}; "
          f"two Ray nodes of {cpus} CPUs", flush=True)
    runs: dict[str, list[tuple[float, Document]]] = {"local": [], "ray": []}
    healthy = True
    started = time.perf_counter()
    with two_node_cluster(cpus) as cluster:
        print(f"cluster at {cluster.address} started in {time.perf_counter() - started:.1f} s", flush=True)
        kill = None if args.kill_after is None else (cluster, args.kill_after)
        for repeat in range(args.repeats):
            runs["local"].append(timed_run(cases, gradparity.RunOptions(backends=backends, timeout=args.timeout)))
            gradparity.shutdown()  # the next local run starts its workers, as the Ray run starts its actors
            print(f"run {repeat + 1}: local {runs['local'][-1][0]:.1f} s", flush=True)
            options = gradparity.RunOptions(backends=backends, executor="ray", ray_address=cluster.address,
                                            timeout=args.timeout)
            runs["ray"].append(timed_run(cases, options, kill))
            document = runs["ray"][-1][1]
            print(f"run {repeat + 1}: ray {runs['ray'][-1][0]:.1f} s; "
                  f"restarts {document.run.restarts or 'none'}", flush=True)
            if args.kill_after is not None and (failed := errors(document)):
                print(f"  {len(failed)} results are errors after the kill:", *failed[:20], sep="\n  ")
                healthy = False
    report(backends, runs)
    for repeat, ((_, local), (_, ray)) in enumerate(zip(runs["local"], runs["ray"]), 1):
        healthy &= agreement(f"run {repeat}", local, ray)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; the cluster is stopped")
