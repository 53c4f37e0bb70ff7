"""A long per-frame effect split into GOP chunks and joined: no seam, same frames, deterministic."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.cid import cid_of_file
from artdag_common.errors import InvalidInputError
from artdag_common.operations import GOP_FRAMES
from services.executor.operations import run_operation

FPS = 25
FRAMES = 2 * GOP_FRAMES + 20  # three chunks, the last one short


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chunks") / "clip.mp4"
    write_test_clip(path, width=160, height=120, fps=FPS, duration_s=FRAMES / FPS)
    return path


def _render_chunked(clip: Path, directory: Path, effect: dict[str, Any], node_type: str = "EFFECT") -> Path:
    chunks = []
    for first in range(0, FRAMES, GOP_FRAMES):
        chunk = directory / f"chunk{first}.mp4"
        config = {**effect, "frames": [first, min(first + GOP_FRAMES, FRAMES)]}
        run_operation(node_type, config, [str(clip)], str(chunk), ["clip"], seed=7, handoff="part")
        chunks.append(str(chunk))
    joined = directory / "joined.mp4"
    run_operation("JOIN", {}, [*chunks, str(clip)], str(joined), ["chunk"] * len(chunks) + ["clip"], seed=7)
    return joined


def _video(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, pts = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24").astype(np.int16))
            pts.append(int(frame.pts or 0))
    return frames, pts


def test_joined_chunks_match_a_single_render(clip: Path, tmp_path: Path) -> None:
    effect = {"effect": "color_cycle"}  # changes with the frame index: a seam would show
    whole = tmp_path / "whole.mp4"
    run_operation("EFFECT", effect, [str(clip)], str(whole), ["clip"], seed=7)
    joined = _render_chunked(clip, tmp_path, effect)

    whole_frames, _ = _video(whole)
    joined_frames, pts = _video(joined)
    assert len(joined_frames) == len(whole_frames) == FRAMES, "no frame lost or doubled at the seams"
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert len(steps) == 1, f"timestamps advance evenly across seams: {sorted(steps)}"
    for index, (a, b) in enumerate(zip(whole_frames, joined_frames, strict=True)):
        assert np.abs(a - b).mean() < 3.0, f"frame {index} differs from the single render"

    with av.open(str(joined)) as out, av.open(str(clip)) as src:
        assert out.streams.audio, "the sound is kept"
        copied = [bytes(p) for p in out.demux(out.streams.audio[0]) if p.size]
        original = [bytes(p) for p in src.demux(src.streams.audio[0]) if p.size]
        # The sound is the source's own packets, untouched: nothing to click at a seam.
        assert copied == original[: len(copied)]
        assert len(copied) >= len(original) - 2
        assert out.streams.video[0].codec_context.name == "h264"


def test_joined_chunks_of_a_fused_chain_match_its_single_render(clip: Path, tmp_path: Path) -> None:
    # A resize, then two effects that change with the frame index: each chunk must carry on where
    # the one before it stopped, for every stage.
    chain = {
        "stages": [
            {"type": "RESIZE", "config": {"width": 128, "height": 96, "mode": "fill"}},
            {"type": "EFFECT", "config": {"effect": "color_cycle"}},
            {"type": "EFFECT", "config": {"effect": "invert"}},
        ]
    }
    whole = tmp_path / "whole.mp4"
    run_operation("CHAIN", chain, [str(clip)], str(whole), ["clip"], seed=7, handoff="part")
    joined = _render_chunked(clip, tmp_path, chain, node_type="CHAIN")
    whole_frames, _ = _video(whole)
    joined_frames, _ = _video(joined)
    assert len(joined_frames) == len(whole_frames) == FRAMES
    for index, (a, b) in enumerate(zip(whole_frames, joined_frames, strict=True)):
        assert np.abs(a - b).mean() < 3.0, f"frame {index} differs from the single render"


def test_chunked_render_is_deterministic(clip: Path, tmp_path: Path) -> None:
    cids = []
    for attempt in ("a", "b"):
        (tmp_path / attempt).mkdir()
        cids.append(cid_of_file(_render_chunked(clip, tmp_path / attempt, {"effect": "invert"})))
    assert cids[0] == cids[1]


def test_a_range_past_the_end_is_refused(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        run_operation(
            "EFFECT",
            {"effect": "invert", "frames": [FRAMES + 10, FRAMES + 20]},
            [str(clip)],
            str(tmp_path / "x.mp4"),
            ["clip"],
            seed=1,
        )
    assert info.value.field == "frames"
    with pytest.raises(InvalidInputError):
        run_operation(
            "EFFECT", {"effect": "invert", "frames": [5, 5]}, [str(clip)], str(tmp_path / "y.mp4"), ["clip"], seed=1
        )
