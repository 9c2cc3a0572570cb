"""The worker process of one backend: loads the framework once, then serves every case.

What it does with a case is the job named by ``options["job"]``: ``parity`` (the default)
answers ``(evaluation, trajectory)``, ``bench`` answers ``(timings,)``, one entry per bench mode.

Messages to the parent, in order: ``("ready", version, flags, import_seconds)`` or
``("fatal", message)``; then per case ``("result", index, *answer, seconds)`` or
``("error", index, message)``; finally ``("done",)``.
"""

from __future__ import annotations

import ctypes
import os
import time
import traceback
from multiprocessing.connection import Connection

from gradparity.backends import BackendEntry, load
from gradparity.backends.timing import measured, time_step, unmeasured

M_TOP_PAD = -2  # mallopt parameter of glibc's <malloc.h>
HEAP_PAD_BYTES = 64 * 2**20
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def limit_threads(threads: int) -> None:
    """Give every math library in this process the same thread count (set before any import)."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info and warning lines
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep ``HEAP_PAD_BYTES`` of freed heap (M_TOP_PAD) instead of handing it
    back to the OS whenever the top of the heap is free, which otherwise makes every training
    step page-fault its arrays of a few hundred KB in afresh. False where there is no mallopt."""
    try:
        return bool(ctypes.CDLL(None).mallopt(M_TOP_PAD, HEAP_PAD_BYTES))
    except (OSError, AttributeError):
        return False


def describe(error: BaseException) -> str:
    """One line: the exception type, its message and where it was raised."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
    message = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {message[:400]}{where}"


def serve(name: str, entry: BackendEntry, options: dict, jobs: Connection, results: Connection) -> None:
    """Entry point of the spawned process: load ``entry`` as ``name``, run each received case."""
    limit_threads(options.get("threads", 1))
    started = time.perf_counter()
    try:
        adapter = load(name, options.get("device", "cpu"), options.get("allow_tf32", False), entry)
    except BaseException as error:  # an import failure is this backend's result, not a crash
        results.send(("fatal", describe(error)))
        return
    results.send(("ready", adapter.version(), adapter.flags(), time.perf_counter() - started))
    job = JOBS[options.get("job", "parity")]
    while (message := jobs.recv()) is not None:
        index, case = message
        began = time.perf_counter()
        try:
            results.send(("result", index, *job(adapter, case, options), time.perf_counter() - began))
        except Exception as error:
            results.send(("error", index, describe(error)))
    results.send(("done",))


def parity_job(adapter, case, options: dict) -> tuple:
    """``(evaluation, trajectory)``: the trajectory is None where the adapter provides none."""
    provides = getattr(adapter, "provides", ("cost", "gradients", "activations", "trajectory"))
    return adapter.evaluate(case), adapter.train(case) if "trajectory" in provides else None


def bench_job(adapter, bench_case, options: dict) -> tuple[list[dict]]:
    """``(timings,)``: one training step of the ``BenchCase``, built here, timed in every mode
    the adapter names (``time_step``), with freed memory kept (``keep_freed_memory``) as for
    every backend; a mode that does not run, or fails, carries the reason."""
    keep_freed_memory()
    case = bench_case.build()
    timings = []
    for mode, reason in adapter.bench_modes().items():
        try:
            timings.append(unmeasured(mode, reason) if reason else
                           measured(mode, time_step(adapter.bench_step(case, mode), **options["bench"])))
        except Exception as error:
            timings.append(unmeasured(mode, describe(error)))
    return (timings,)


JOBS = {"parity": parity_job, "bench": bench_job}

