"""Golden JSON of each message: what other replicas and external subscribers rely on."""

import json

import pytest
from pydantic import BaseModel

from artdag_common.schemas import (
    ContentRecord,
    HealthReply,
    Principal,
    RevokeUserRequest,
    RpcReply,
    RunEvent,
    StepEvent,
    StepTask,
    SubmitRunRequest,
    VerifyTokenRequest,
)

GOLDEN: list[tuple[type[BaseModel], str]] = [
    (
        SubmitRunRequest,
        '{"v":1,"recipe":"name: x","inputs":{"video":"QmX"},"owner":"alice","fresh":false,'
        '"run_id":"run-0123456789abcdef0123456789abcdef","viewer":{"user":"alice","admin":false}}',
    ),
    (
        StepTask,
        '{"v":1,"run_id":"run-1","step":{"step_id":"s","name":"small","node_type":"RESIZE",'
        '"config":{"width":320},"inputs":["i"],"op_version":"1","source_cid":null,"level":1,'
        '"media_type":"video/mp4","handoff":"lossless","covers":["small"]},'
        '"input_cids":["QmX"],"input_names":["input:video"],"fresh":false}',
    ),
    (
        StepEvent,
        '{"v":1,"run_id":"run-1","step_id":"s","status":"completed","output_cid":"QmY","error":null,'
        '"worker":"executor-1","elapsed_s":0.5,"at":1700000000.0,"output":null}',
    ),
    (RunEvent, '{"v":1,"run_id":"run-1","status":"failed","output_cid":null,"error":"boom","at":1700000000.0}'),
    (
        ContentRecord,
        '{"v":1,"cid":"QmX","size":12,"media_type":"video/mp4","name":"a.mp4","origin":"upload",'
        '"created_at":1700000000.0,"description":null,"tags":[],"owner":null,"pinned":false,'
        '"published":false,"last_access":null,"provenance_cid":null}',
    ),
    (
        HealthReply,
        '{"v":1,"service":"cache","instance":"cache-1","version":"0.1.0","ok":true,"uptime_s":1.5,"details":{}}',
    ),
    (
        Principal,
        '{"v":1,"user":"alice","roles":["admin"],"scopes":[],"token_hash":"ab12","issued_at":1700000000.0,'
        '"expires_at":null,"source":"local"}',
    ),
    (VerifyTokenRequest, '{"v":1,"token":"adt_x"}'),
    (RevokeUserRequest, '{"v":1,"user":"alice"}'),
    (RpcReply, '{"v":1,"ok":false,"data":null,"error":{"code":"not_found","message":"no run","field":"run_id"}}'),
]


@pytest.mark.parametrize(("model", "text"), GOLDEN, ids=[m.__name__ for m, _ in GOLDEN])
def test_golden_json_round_trips(model: type[BaseModel], text: str) -> None:
    parsed = model.model_validate_json(text)
    assert json.loads(parsed.model_dump_json()) == json.loads(text)


def test_newer_fields_are_ignored_by_older_readers() -> None:
    event = StepEvent.model_validate_json(
        '{"v":1,"run_id":"r","step_id":"s","status":"running","a_field_from_the_future":1}'
    )
    assert event.status == "running"


def test_unknown_schema_version_is_refused() -> None:
    with pytest.raises(ValueError, match="v"):
        RunEvent.model_validate_json('{"v":2,"run_id":"r","status":"running"}')
