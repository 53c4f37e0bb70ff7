"""An effect's preview on the effect page: a small run (segment → effect) through the normal run path.

The clip is one of the user's videos, or the stack's sample clip: a short synthetic clip (colour
bars, a moving box, a tone) the gateway makes once, on the first preview that asks for it, and
keeps as content nobody owns under the shared asset name `sample-clip`. A preview's recipe binds
that clip by the asset name, as any recipe may (a user's own `sample-clip` would win).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from artdag_common.contracts import Cache
from artdag_common.errors import InvalidInputError
from artdag_common.schemas import AssetInput, AssetResolved, AssetResolveRequest, ContentOrigin, ContentRecord
from services.gateway.deps import Gateway
from services.gateway.effects import EffectParam

SAMPLE_NAME = "sample-clip"
# The sample clip: small and short, quick to render on any machine.
SAMPLE_WIDTH, SAMPLE_HEIGHT, SAMPLE_FPS, SAMPLE_SECONDS = 320, 180, 25, 2.0
# A preview renders at most this much of the clip.
PREVIEW_SECONDS = 2.0
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

_making = asyncio.Lock()  # one sample clip made at a time in this process (another replica makes the same bytes)


def _sample_bytes() -> bytes:
    from artdag_cli.demo_media import write_test_clip  # PyAV and numpy load only when a sample is made

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.mp4"
        write_test_clip(
            path, width=SAMPLE_WIDTH, height=SAMPLE_HEIGHT, fps=SAMPLE_FPS, duration_s=SAMPLE_SECONDS, tone_hz=440.0
        )
        return path.read_bytes()


async def sample_clip(gw: Gateway) -> str:
    """The sample clip's CID: the content the shared name `sample-clip` stands for, made (once) if there is none."""
    async with _making:
        found: AssetResolved = await gw.call(Cache.asset_resolve, AssetResolveRequest(names=[SAMPLE_NAME]))
        cid = found.cids.get(SAMPLE_NAME)
        if cid is not None and await gw.store.exists(cid):
            return cid
        gw.ensure_room("the sample clip")
        data = await asyncio.to_thread(_sample_bytes)
        cid = await gw.store.put_bytes(data)
        record = ContentRecord(
            cid=cid,
            size=len(data),
            media_type="video/mp4",
            name="sample-clip.mp4",
            description="the sample clip effect previews run on: colour bars, a moving box, a 440 Hz tone",
            origin=ContentOrigin.UPLOAD,
            owner=None,
        )
        await gw.call(Cache.register, record)
        await gw.call(Cache.asset_add, AssetInput(name=SAMPLE_NAME, cid=cid, shared=True))
        return cid


def _number(raw: str, param: EffectParam) -> float | int:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(f"{raw[:40]!r} is not a number", field=f"params.{param.name}") from None
    return int(value) if param.type == "int" and value.is_integer() else value


def preview_params(form: dict[str, str], params: list[EffectParam]) -> dict[str, Any]:
    """The parameter values a preview form gives (`param.NAME`); a blank field keeps the default.
    The planner checks them against the effect's declarations, as for any run."""
    values: dict[str, Any] = {}
    for param in params:
        raw = form.get(f"param.{param.name}", "").strip()
        if not raw:
            continue
        if param.type == "color":
            if not COLOUR_RE.match(raw):
                raise InvalidInputError(f"{raw[:40]!r} is no colour (#rrggbb)", field=f"params.{param.name}")
            values[param.name] = [int(raw[i : i + 2], 16) for i in (1, 3, 5)]
        else:
            values[param.name] = _number(raw, param)
    return values


def preview_recipe(effect_cid: str, params: dict[str, Any], *, sample: bool) -> str:
    """A recipe that cuts the first seconds of `clip` and applies the effect to them (JSON is YAML)."""
    clip: dict[str, Any] = {"type": "video", "description": "the clip the effect is previewed on"}
    if sample:
        clip["asset"] = SAMPLE_NAME
    recipe = {
        "name": "effect-preview",
        "description": "an effect's preview, from its page",
        "inputs": {"clip": clip},
        "steps": [
            {"id": "cut", "type": "SEGMENT", "inputs": ["clip"], "config": {"duration": PREVIEW_SECONDS}},
            {"id": "fx", "type": "EFFECT", "inputs": ["cut"], "config": {"effect": effect_cid, "params": params}},
        ],
        "output": "fx",
    }
    return json.dumps(recipe, indent=1)


def colour_hex(value: Any) -> str:
    """A colour parameter's default as an `<input type=color>` value."""
    if isinstance(value, list | tuple) and len(value) == 3:
        return "#" + "".join(f"{max(0, min(255, int(v))):02x}" for v in value)
    return "#000000"
