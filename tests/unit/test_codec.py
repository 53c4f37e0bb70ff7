import json
import os

from artdag_common.codec import COMPRESS_ABOVE, pack, unpack


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
