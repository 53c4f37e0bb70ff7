from pathlib import Path

import pytest

from artdag_common.settings import CommonSettings, NatsSettings, load_settings
from services.gateway.settings import GatewaySettings


def test_defaults_live_under_the_home_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARTDAG_HOME", str(tmp_path))
    settings = CommonSettings()
    assert settings.store_dir == tmp_path / "cache"
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'artdag.db'}"


def test_the_seed_variable_names_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://artdag:pw@db:5432/artdag")
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("NATS_URL", "nats://bus:4222")
    settings = GatewaySettings()
    assert settings.effective_database_url == "postgresql+asyncpg://artdag:pw@db:5432/artdag"
    assert settings.store_dir == tmp_path / "c"
    assert settings.port == 9001
    assert settings.nats.url == "nats://bus:4222"


def test_the_prefixed_name_wins_over_the_seed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("ARTDAG_PORT", "9002")
    assert GatewaySettings().port == 9002


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTDAG_CLUSTER_KEY", "hunter2-secret")
    settings = CommonSettings()
    assert settings.cluster_key_value == "hunter2-secret"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("PORT", "eighty", "ARTDAG_PORT"),
        ("PORT", "70000", "less than or equal"),
        ("NATS_URL", "http://x", "not a NATS URL"),
        ("DATABASE_URL", "mysql://x", "postgresql:// or sqlite://"),
        ("ARTDAG_LOG_LEVEL", "LOUD", "unknown log level"),
        ("MAX_UPLOAD_BYTES", "-1", "greater than 0"),
    ],
)
def test_bad_environment_exits_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        load_settings(GatewaySettings)
    assert words in str(info.value.code)


def test_an_executor_heartbeat_must_come_well_within_the_ack_wait() -> None:
    from pydantic import ValidationError

    from services.executor.settings import ExecutorSettings

    assert ExecutorSettings(ack_wait_s=4, heartbeat_s=1).ack_wait_s == 4
    with pytest.raises(ValidationError, match="ARTDAG_HEARTBEAT_S must be at most half of ARTDAG_ACK_WAIT_S"):
        ExecutorSettings(ack_wait_s=4, heartbeat_s=10)


def test_settings_are_grouped_by_concern_and_keep_their_variable_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARTDAG_NATS_USER", "planner")
    monkeypatch.setenv("ARTDAG_NATS_PASSWORD", "pw-secret")
    monkeypatch.setenv("IPFS_PRIMARY", "true")
    monkeypatch.setenv("ARTDAG_S3_BUCKET", "media")
    monkeypatch.setenv("ARTDAG_AUTH_FAIL_LIMIT", "7")
    # A keyword for part of a group leaves the environment's values for the rest of it.
    settings = CommonSettings(nats_url="nats://bus:4222", store="s3", home=tmp_path)
    assert (settings.nats.url, settings.nats.user) == ("nats://bus:4222", "planner")
    login = settings.nats.login
    assert login is not None and login.password == "pw-secret"
    assert (settings.store.kind, settings.store.s3_bucket, settings.store.ipfs_primary) == ("s3", "media", True)
    assert settings.auth.fail_limit == 7 and not settings.auth.l2_mode
    assert "pw-secret" not in repr(settings)
    # A group given as a model is taken whole; as a mapping, in part.
    assert CommonSettings(nats=NatsSettings(url="nats://other:4222")).nats.user is None
    assert CommonSettings(nats={"url": "nats://other:4222"}).nats.user == "planner"


@pytest.mark.parametrize(
    ("name", "value", "variable", "words"),
    [
        ("ARTDAG_NATS_REPLICAS", "9", "ARTDAG_NATS_REPLICAS", "less than or equal to 5"),
        ("ARTDAG_S3_PREFIX", "/abs", "ARTDAG_S3_PREFIX", "relative"),
        ("L2_SERVER", "ftp://x", "ARTDAG_L2_SERVER", "http:// or https://"),
        ("ARTDAG_STORE", "s3", "ARTDAG_STORE settings", "needs ARTDAG_S3_BUCKET"),
        ("ARTDAG_NATS_USER", "only-user", "ARTDAG_NATS settings", "set both ARTDAG_NATS_USER"),
    ],
)
def test_a_bad_grouped_variable_is_named_as_it_is_set(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, variable: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        load_settings(CommonSettings)
    message = str(info.value.code)
    assert f"{variable}: " in message and words in message, message
