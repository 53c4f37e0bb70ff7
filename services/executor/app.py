from __future__ import annotations

import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor

from nats.aio.msg import Msg

from artdag_common import streams, subjects
from artdag_common.content_store import open_store_async
from artdag_common.media_limits import InputLimits
from artdag_common.nats_server import die_with_parent
from artdag_common.restore import restore
from artdag_common.runtime import ServiceRuntime
from artdag_effects.sandbox import PythonEffectPolicy
from services.executor.handlers import StepWorker
from services.executor.media import set_input_limits
from services.executor.service import StepRenderer
from services.executor.settings import ExecutorSettings

# Steps that are no media work an executor runs at once, besides its media slots.
INLINE_SLOTS = 64


# Each media worker renders one step with one core's worth of numpy: OpenBLAS's own threads
# (one per core by default, spinning while they wait) fought the encoder's and the other
# workers' for the same cores; a chain of colour effects took five times the CPU.
WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start_worker(parent_pid: int, limits: InputLimits) -> None:
    """A media worker's initializer: end with the executor, decode within the input limits."""
    die_with_parent(parent_pid)
    set_input_limits(limits)


async def start(runtime: ServiceRuntime, settings: ExecutorSettings) -> None:
    # Media work runs in worker processes ("spawn": no forked event loop or sockets) that end with
    # this one: an executor killed outright must not leave a render going on for nobody. They are
    # spawned with this process's environment: the thread limits are set before they start.
    for name, value in WORKER_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    pool = ProcessPoolExecutor(
        max_workers=settings.max_concurrent_steps,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(os.getpid(), InputLimits.of(settings)),
    )
    runtime.stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    scratch = settings.home / "scratch" / runtime.instance
    runtime.stack.callback(shutil.rmtree, scratch, ignore_errors=True)
    renderer = StepRenderer(
        await open_store_async(settings, runtime.stack, nc=runtime.nc),
        pool,
        scratch,
        restore=lambda cid: restore(runtime.nc, cid),
        python_effects=PythonEffectPolicy.of(settings),
    )
    worker = StepWorker(
        runtime,
        renderer,
        results=await runtime.js.key_value(streams.KV_RESULTS.bucket),
        claims=await runtime.js.key_value(streams.KV_CLAIMS.bucket),
        heartbeat_s=settings.heartbeat_s,
        lease_s=settings.claim_lease_s,
        media_slots=settings.max_concurrent_steps,
    )
    runtime.health_details = lambda: dict(worker.counts)

    async def on_cancelled(msg: Msg) -> None:
        worker.on_cancelled(msg.subject.split(".")[3])

    await runtime.nc.subscribe(subjects.RUNS_CANCELLED_WILDCARD, cb=on_cancelled)
    # Media work is fetched only as slots free up (`admit`): fetched but not startable, it would
    # sit here while another replica idles. Inline steps come from their own queue, many at once.
    runtime.run_consumer(
        streams.STEP_WORKERS, worker.handle, concurrency=settings.max_concurrent_steps, admit=worker.admit
    )
    runtime.run_consumer(streams.INLINE_STEP_WORKERS, worker.handle, concurrency=INLINE_SLOTS)
