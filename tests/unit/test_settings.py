"""Settings come from DATABUS_* variables and an optional TOML file; secrets stay masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from databus.errors import ConfigurationError
from databus.settings import DEMO_PSEUDONYM_KEY, Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABUS_PSEUDONYM_KEY", "DATABUS_DEMO", "DATABUS_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABUS_CONFIG", str(tmp_path / "absent.toml"))


def test_defaults_point_at_the_local_broker() -> None:
    settings = Settings()
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.partitions == 12


def test_no_key_outside_the_demo_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="DATABUS_PSEUDONYM_KEY"):
        Settings().pseudonym_key_bytes()


def test_demo_uses_the_labelled_demo_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABUS_DEMO", "1")
    assert Settings().pseudonym_key_bytes() == DEMO_PSEUDONYM_KEY.encode()
    assert b"DEMO" in DEMO_PSEUDONYM_KEY.encode()


@pytest.mark.parametrize("key", ["short", "x" * 31, "\u5bc6" * 10])
def test_a_key_shorter_than_32_bytes_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("DATABUS_PSEUDONYM_KEY", key)
    with pytest.raises(
        ConfigurationError, match=r"DATABUS_PSEUDONYM_KEY is \d+ bytes; .* at least 32"
    ) as e:
        Settings().pseudonym_key_bytes()
    assert "\n" not in str(e.value)
    assert key not in str(e.value)


def test_a_key_of_32_bytes_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABUS_PSEUDONYM_KEY", "\u5bc6" * 11)  # 33 bytes of UTF-8
    assert len(Settings().pseudonym_key_bytes()) == 33


@pytest.mark.parametrize("where", ["environment", "file"])
def test_a_key_and_the_demo_at_once_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    """The precedence is never silent: a stray setting cannot switch keys unnoticed."""
    monkeypatch.setenv("DATABUS_DEMO", "1")
    if where == "environment":
        monkeypatch.setenv("DATABUS_PSEUDONYM_KEY", "a-real-key-of-at-least-thirty-two-bytes")
    else:
        config = tmp_path / "databus.toml"
        config.write_text('pseudonym_key = "a-real-key-of-at-least-thirty-two-bytes"\n')
        monkeypatch.setenv("DATABUS_CONFIG", str(config))
    with pytest.raises(
        ConfigurationError, match="set either DATABUS_PSEUDONYM_KEY or DATABUS_DEMO, not both"
    ):
        Settings().pseudonym_key_bytes()


def test_environment_beats_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "databus.toml"
    key = "from-the-file-and-at-least-32-bytes-long"
    config.write_text(f'bootstrap_servers = "kafka-a:9092"\npseudonym_key = "{key}"\n')
    monkeypatch.setenv("DATABUS_CONFIG", str(config))
    assert Settings().bootstrap_servers == "kafka-a:9092"
    assert Settings().pseudonym_key_bytes() == key.encode()
    monkeypatch.setenv("DATABUS_BOOTSTRAP_SERVERS", "kafka-b:9092")
    assert Settings().bootstrap_servers == "kafka-b:9092"


def test_the_safe_dump_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABUS_PSEUDONYM_KEY", "very-secret")
    monkeypatch.setenv("DATABUS_SASL_PASSWORD", "also-secret")
    dumped = str(Settings().safe_dump())
    assert "very-secret" not in dumped
    assert "also-secret" not in dumped


def test_sasl_settings_reach_the_kafka_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABUS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DATABUS_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("DATABUS_SASL_USERNAME", "hrss")
    monkeypatch.setenv("DATABUS_SASL_PASSWORD", "pw")
    options = Settings().kafka_client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "hrss"
    assert options["sasl_plain_password"] == "pw"


def test_sasl_without_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABUS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DATABUS_SASL_USERNAME", "hrss")
    monkeypatch.delenv("DATABUS_SASL_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError, match="needs DATABUS_SASL_PASSWORD"):
        Settings().kafka_client_options()


def test_sasl_mechanism_defaults_to_the_secure_local_broker_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABUS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DATABUS_SASL_USERNAME", "hrss")
    monkeypatch.setenv("DATABUS_SASL_PASSWORD", "pw")
    settings = Settings()
    assert settings.kafka_client_options()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings.principal() == "hrss"


def test_tls_protocols_get_an_ssl_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABUS_SECURITY_PROTOCOL", "SSL")
    options = Settings().kafka_client_options()
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"


def test_faust_gets_the_same_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from databus.streams.security import faust_broker_settings  # noqa: PLC0415 - Faust

    assert faust_broker_settings(Settings()) == {}
    monkeypatch.setenv("DATABUS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DATABUS_SASL_USERNAME", "databus-decisions")
    monkeypatch.setenv("DATABUS_SASL_PASSWORD", "pw")
    credentials = faust_broker_settings(Settings())["broker_credentials"]
    assert (credentials.username, credentials.password) == ("databus-decisions", "pw")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_PLAINTEXT"
