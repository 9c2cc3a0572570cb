"""The Ray executor (``gradparity.cluster``): the same document as the local runner, an actor
killed mid-run restarted with no case lost, a backend whose actor cannot start or that hangs an
error while the others pass, an interrupt that leaves no Ray process behind, and the one-line
hint where Ray is not installed. The runs through the command start their own local Ray
instance, as a user's does; the others share one started for this module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradparity import cluster
from gradparity.backends import REGISTRY, BackendEntry
from gradparity.core.cases import build_case
from gradparity.engine import RunOptions, run

ray = pytest.importorskip("ray", reason="the Ray executor's tests need Ray: pip install 'gradparity[ray]'")

GRADPARITY = str(Path(sys.executable).with_name("gradparity"))
FAKES = Path(__file__).resolve().parent  # fake_backends.py
DONE_WHEN = ("--case", "seed-2layer", "--case", "momentum", "--backends", "numpy,torch,jax")


def gradparity(*arguments: str, cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    """The installed command, from ``cwd``, as a user runs it."""
    return subprocess.run([GRADPARITY, *arguments], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **environment})


def judged(document: dict) -> dict:
    """What the executor must not change: everything but the run's record (timings, the
    executor) and where each column ran (``environment.nodes`` and the nodes' fingerprints)."""
    environment = {key: value for key, value in document["environment"].items() if key not in ("nodes", "environments")}
    return {**document, "run": None, "environment": environment}


def test_a_ray_run_gives_the_local_runners_document(tmp_path):
    """About 19 s on a new machine (10 s warm): the issue's command twice through the installed
    entry point, each run starting its frameworks (jax, torch) afresh, once on a local Ray
    instance the run starts and stops (4 s more), once on the local runner."""
    on_ray = gradparity("run", "--executor", "ray", *DONE_WHEN, "--json", "ray.json", cwd=tmp_path)
    assert on_ray.returncode == 0, on_ray.stderr
    local = gradparity("run", *DONE_WHEN, "--json", "local.json", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    ray_document, local_document = (json.loads((tmp_path / name).read_text()) for name in ("ray.json", "local.json"))
    assert judged(ray_document) == judged(local_document)
    assert ray_document["summary"]["passed"] == 12
    assert ray_document["run"]["executor"] == "ray" and local_document["run"]["executor"] == "local"
    nodes = ray_document["environment"]["nodes"]
    assert set(nodes) == {"numpy", "torch", "jax"}
    assert set(ray_document["environment"]["environments"]) == set(nodes.values())
    assert "12 pass" in on_ray.stdout and "12 pass" in local.stdout  # the same summary line


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for this module's runs through the API (each run joins it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """A module per fake adapter used here, importable by the actors (they get this sys.path)."""
    for name in ("TellsItsProcess", "DiesWhenLoaded", "Hang"):
        (tmp_path / f"fake_{name.lower()}.py").write_text(f"from fake_backends import {name} as Adapter\n")
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


CASES = [build_case(name, dtype) for name in ("seed-2layer", "momentum") for dtype in ("float64", "float32")]


def test_an_actor_killed_mid_run_is_restarted_and_no_case_is_lost(local_ray, fakes):
    """About 4 s with the module's Ray instance: the actor's process is killed (SIGKILL, from here) after its first answer;
    Ray starts it again and its three other cases are answered by the new process."""
    pid_file = fakes / "pid"
    killable = BackendEntry("fake_tellsitsprocess", environment={"GRADPARITY_TEST_PID_FILE": str(pid_file)})
    killed = []

    def kill_after_first_answer(backend: str, case: str) -> None:
        if backend == "killable" and not killed:
            killed.append(int(pid_file.read_text()))
            os.kill(killed[0], signal.SIGKILL)

    options = RunOptions(backends=["numpy"], extra_backends={"killable": killable}, executor="ray")
    document = run(CASES, options, kill_after_first_answer)
    assert all(result.backends["killable"].status == "pass" for result in document.results)
    assert document.summary.passed == 8 and document.run.restarts == {"killable": 1}
    assert int(pid_file.read_text()) != killed[0]  # the later cases came from a new process


def test_a_backend_that_cannot_start_or_hangs_is_an_error_while_the_others_pass(local_ray, fakes):
    """About 5 s: the unstartable actor dies as it loads, is started MAX_RESTARTS more times and
    gives up; the hanging one is stopped at its 5 s timeout."""
    extra = {"unstartable": BackendEntry("fake_dieswhenloaded"), "hangs": BackendEntry("fake_hang")}
    options = RunOptions(backends=["numpy"], extra_backends=extra, executor="ray", timeout=5)
    document = run(CASES[:2], options)
    for result in document.results:
        assert result.backends["numpy"].status == "pass"
        unstartable, hangs = result.backends["unstartable"], result.backends["hangs"]
        assert unstartable.status == hangs.status == "error"
        assert f"its Ray actor died {cluster.MAX_RESTARTS + 1} times" in unstartable.reason
        assert hangs.reason == "timed out after 5 s"


def test_a_framework_on_cuda_without_a_gpu_in_the_cluster_is_an_error_at_once(local_ray, fakes):
    """A framework column on ``--device cuda`` does not wait for a GPU the cluster lacks."""
    framework = BackendEntry("fake_tellsitsprocess", environment={"GRADPARITY_TEST_PID_FILE": str(fakes / "pid")})
    options = RunOptions(backends=[], extra_backends={"framework": framework}, executor="ray", device="cuda")
    result = run(CASES[:1], options).results[0]
    assert not (fakes / "pid").exists()  # its actor never started
    assert (result.backends["framework"].status, result.backends["framework"].reason) == (
        "error", "it asks for a GPU (--device cuda) and the Ray cluster has none")


def descendants(pid: int) -> set[int]:
    """The processes below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_an_interrupted_ray_run_leaves_no_ray_process(tmp_path):
    """About 11 s: Ctrl-C (SIGINT) once an actor has started; the command says it was interrupted
    and every process its Ray instance started (raylet, GCS, actors) is gone."""
    command = subprocess.Popen([GRADPARITY, "run", "--executor", "ray", "--backends", "numpy,jax"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, started = time.monotonic() + 60, set()
    while time.monotonic() < deadline and not any("BackendActor" in command_line(pid) for pid in started):
        time.sleep(0.2)
        started = descendants(command.pid)
    assert any("BackendActor" in command_line(pid) for pid in started), "no actor started in 60 s"
    command.send_signal(signal.SIGINT)
    _, stderr = command.communicate(timeout=60)
    assert command.returncode == 130 and "gradparity: interrupted" in stderr
    time.sleep(1)
    assert [pid for pid in started if alive(pid)] == []


def command_line(pid: int) -> str:
    """A process's command line (its title, for a Ray worker), or empty where it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_without_ray_the_executor_says_how_to_install_it(tmp_path):
    """A Python where ``import ray`` fails: one line, exit 2, before any case runs."""
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    done = gradparity("run", "--executor", "ray", "--case", "seed-2layer", cwd=tmp_path, PYTHONPATH=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"gradparity: error: {cluster.INSTALL_HINT}"


def test_ray_address_needs_the_ray_executor(tmp_path):
    done = gradparity("run", "--ray-address", "auto", "--case", "seed-2layer", cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (2, "gradparity: error: --ray-address needs --executor ray")


def test_each_actor_asks_for_what_its_worker_needs():
    """One CPU each; one GPU for a framework on CUDA, none for the reference; the backend's own
    environment variables with the worker's."""
    jax, numpy = REGISTRY["jax"], REGISTRY["numpy"]
    on_cuda = cluster.actor_options("jax", jax, {"device": "cuda", "threads": 1})
    assert (on_cuda["num_cpus"], on_cuda["num_gpus"]) == (1, 1)
    assert cluster.actor_options("numpy", numpy, {"device": "cuda", "threads": 1})["num_gpus"] == 0
    variables = on_cuda["runtime_env"]["env_vars"]
    assert variables["JAX_ENABLE_X64"] == "1" and variables["OPENBLAS_NUM_THREADS"] == "1"
    assert on_cuda["max_restarts"] == cluster.MAX_RESTARTS


def test_a_pinned_version_runs_from_the_environment_its_node_makes(local_ray):
    """About 6 s where uv has NumPy 2.3.5 cached (``test_versions`` makes the same environment):
    ``numpy==2.3.5`` beside the installed NumPy, bit for bit the same, as on the local runner."""
    document = run(CASES[:2], RunOptions(backends=["numpy==2.3.5", "numpy"], executor="ray"))
    assert document.environment.frameworks["numpy==2.3.5"] == "numpy 2.3.5"
    assert document.summary.passed == 4
    gaps = [gap for comparison in document.versions for gap in comparison.quantities]
    assert len(document.versions) == 2 and gaps and all(gap.differing == 0 for gap in gaps)
