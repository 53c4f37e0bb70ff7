import json
import os
import zlib

import pydantic
import pytest
import zstandard

from artdag_common.bus import decode
from artdag_common.codec import COMPRESS_ABOVE, pack, unpack, unpack_or_raw
from artdag_common.schemas import RunEvent, RunStatus


def test_small_payloads_stay_plain_json() -> None:
    data = json.dumps({"a": 1}).encode()
    assert pack(data) == data
    assert unpack(data) == data


def test_large_payloads_shrink_and_come_back() -> None:
    data = json.dumps({"steps": [{"status": "pending", "name": f"slice{i}"} for i in range(20_000)]}).encode()
    assert len(data) > COMPRESS_ABOVE
    packed = pack(data)
    assert len(packed) < len(data) / 5
    assert unpack(packed) == data


def test_incompressible_data_still_round_trips() -> None:
    data = os.urandom(COMPRESS_ABOVE + 1)
    assert unpack(pack(data)) == data


def test_values_packed_by_earlier_versions_still_unpack() -> None:
    data = json.dumps({"steps": ["x"] * 50_000}).encode()
    assert unpack(b"\x00z" + zlib.compress(data, 1)) == data


def test_a_frame_claiming_a_huge_size_is_refused_before_inflating() -> None:
    # A hostile message on the bus: a tiny frame that says it holds 1 TiB.
    bomb = b"\x00s" + zstandard.ZstdCompressor().compress(b"{}")
    header = zstandard.get_frame_parameters(bomb[2:])
    assert header.content_size == 2
    forged = b"\x00s" + zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 10)
    with pytest.raises(ValueError, match="declares"):
        unpack(forged)  # no size in the header: refused, not inflated blindly
    with pytest.raises(ValueError, match="not a valid Zstandard frame"):
        unpack(b"\x00s" + b"\x28\xb5\x2f\xfd" + b"garbage" * 3)


def test_a_corrupt_packed_message_is_reported_as_malformed() -> None:
    corrupt = b"\x00s\x28\xb5\x2f\xfd\x00\x58garbage"
    assert unpack_or_raw(corrupt) == corrupt
    with pytest.raises(pydantic.ValidationError):
        decode(RunEvent, corrupt)
    big = RunEvent(run_id="r" * 8, status=RunStatus.FAILED, error="x" * COMPRESS_ABOVE)
    packed = pack(big.model_dump_json().encode())
    assert packed.startswith(b"\x00s")
    assert decode(RunEvent, packed) == big
