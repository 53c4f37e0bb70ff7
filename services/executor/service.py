"""Rendering one step: materialise inputs, render in the process pool, store the output."""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from artdag_common.content_store import ContentStore
from artdag_common.errors import NotFoundError, PermanentError, invalid_input
from artdag_common.media_types import SNIFF_BYTES, sniff_media_type
from artdag_common.operations import INLINE_NODE_TYPES, get_operation
from artdag_common.schemas import StepTask
from artdag_common.telemetry import exporting
from artdag_effects.loading import load_user_effects
from artdag_effects.sandbox import PythonEffectPolicy
from artdag_effects.user import effect_cids, user_source
from services.executor.operations import output_suffix, render_inline, run_operation


@dataclass(frozen=True)
class RenderedOutput:
    """A step's stored output: its cid, size and sniffed media type."""

    cid: str
    size: int
    media_type: str
    frames: int | None = None  # video frames written, counted only when traces are exported

    @property
    def suffix(self) -> str:
        return {"audio/mp4": ".m4a", "image/png": ".png", "text/plain": ".txt"}.get(self.media_type, ".mp4")


class StepRenderer:
    """Renders steps; the output becomes visible in the store only once it is whole."""

    def __init__(
        self,
        store: ContentStore,
        pool: Executor,
        scratch: Path,
        restore: Callable[[str], Awaitable[None]] | None = None,
        python_effects: PythonEffectPolicy | None = None,
    ) -> None:
        self.store = store
        # Python effects (off when None): checked here, run by the worker in a sandbox under these limits.
        self.python_effects = python_effects
        # Reads content the store gave up to a storage provider back into it (the cache service does).
        self.restore = restore
        self.pool = pool
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)

    async def _read_small(self, cid: str, limit: int) -> bytes:
        """A small stored file's bytes (an effect's source), read back from a provider if offloaded."""
        try:
            return await self.store.get_bytes(cid, max_bytes=limit)
        except NotFoundError:
            if self.restore is None:
                raise
        await self.restore(cid)
        return await self.store.get_bytes(cid, max_bytes=limit)

    async def render(self, task: StepTask) -> RenderedOutput:
        step = task.step
        op = get_operation(step.node_type)
        if op is None:
            raise PermanentError(f"unknown node type {step.node_type}")
        # User effects (sources by CID) are read and verified here once per process, and their
        # verified sources go along to the worker process.
        named = effect_cids(step.config)
        await load_user_effects(named, self._read_small, python=self.python_effects)
        sources = {cid: source for cid in named if (source := user_source(cid)) is not None}
        try:
            parsed = op.parse_config(step.config)
        except ValidationError as exc:
            raise invalid_input(exc) from None
        if len(task.input_cids) != len(step.inputs) or not op.min_inputs <= len(step.inputs) <= op.max_inputs:
            raise PermanentError(f"{step.node_type} step given {len(task.input_cids)} input cids")
        # Every random choice an operation makes is seeded from its step id: same step, same bytes.
        seed = int(step.step_id[:16], 16)
        if step.node_type in INLINE_NODE_TYPES:
            # Made in memory on the event loop: no scratch file, no hop to a worker process.
            data = render_inline(step.node_type, parsed, seed)
            cid = await self.store.put_bytes(data)
            return RenderedOutput(cid=cid, size=len(data), media_type=sniff_media_type(data[:SNIFF_BYTES]))
        config = parsed.model_dump(mode="json", exclude_none=True)
        labels = [
            f"{name.removeprefix('input:')!r} ({cid})"
            for name, cid in zip(
                task.input_names or [f"#{i}" for i in range(len(task.input_cids))], task.input_cids, strict=False
            )
        ]

        async def materialise(label: str, cid: str) -> str:
            try:
                return str(await self.store.local_path(cid, self.scratch))
            except NotFoundError:
                if self.restore is None:
                    raise PermanentError(f"input {label} is not in the content store") from None
            try:
                await self.restore(cid)
            except NotFoundError:
                raise PermanentError(f"input {label} is not in the content store, nor at a storage provider") from None
            return str(await self.store.local_path(cid, self.scratch))

        paths = list(
            await asyncio.gather(*(materialise(label, cid) for label, cid in zip(labels, task.input_cids, strict=True)))
        )
        output = self.scratch / f"{step.step_id}.{uuid.uuid4().hex}{output_suffix(step.node_type)}"
        try:
            loop = asyncio.get_running_loop()
            render = functools.partial(
                run_operation,
                seed=seed,
                handoff=step.handoff,
                user_effects=sources,
                python_effects=self.python_effects,
            )
            await loop.run_in_executor(self.pool, render, step.node_type, config, paths, str(output), labels)
            head, size = await asyncio.to_thread(_head, output)
            # Frames are a trace attribute only: not worth opening the output again when nothing is exported.
            frames = await asyncio.to_thread(_video_frames, output) if exporting() else None
            cid = await self.store.put_file(output)
            return RenderedOutput(cid=cid, size=size, media_type=sniff_media_type(head), frames=frames)
        finally:
            output.unlink(missing_ok=True)


def _head(path: Path) -> tuple[bytes, int]:
    """The output's first bytes (to sniff its type) and its size."""
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES), os.fstat(handle.fileno()).st_size


def _video_frames(path: Path) -> int | None:
    """How many frames the output's video stream holds (from the container's index), or None."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            return int(container.streams.video[0].frames) or None
    except (av.FFmpegError, OSError):
        return None
