"""The secure broker's certificates and the private modes of the broker directory."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from databus.ops.broker_security import env_file_text
from databus.ops.kafka_dist import exclusive_lock
from databus.ops.private_files import loose_modes, make_tree_private, write_private
from databus.ops.tls import (
    BROKER_DAYS,
    CA_DAYS,
    BrokerTls,
    broker_certificate,
    ensure_broker_tls,
    tls_files,
)

NOW = dt.datetime(2026, 5, 6, 9, 30, tzinfo=dt.UTC)


def ca_of(tls: BrokerTls) -> x509.Certificate:
    return x509.load_pem_x509_certificate(tls.ca_file.read_bytes())


def test_broker_certificate_names_loopback_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    tls = ensure_broker_tls(tmp_path / "tls", now=NOW)
    cert = broker_certificate(tls)

    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    cert.verify_directly_issued_by(ca_of(tls))
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - NOW > dt.timedelta(days=BROKER_DAYS - 1)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca_of(tls).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "BEGIN PRIVATE KEY" in tls.key_pem
    assert tls.chain_pem.count("BEGIN CERTIFICATE") == 2  # the broker's, then the CA's


def test_tls_material_is_private(tmp_path: Path) -> None:
    ensure_broker_tls(tmp_path / "tls", now=NOW)

    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "tls").iterdir()}
    assert modes == {name: 0o600 for name in ("ca.key", "ca.pem", "broker.key", "broker.pem")}


def test_certificates_are_kept_across_starts(tmp_path: Path) -> None:
    first = ensure_broker_tls(tmp_path / "tls", now=NOW)

    again = ensure_broker_tls(tmp_path / "tls", now=NOW + dt.timedelta(days=100))

    assert again == first == tls_files(tmp_path / "tls")


def test_a_broker_certificate_close_to_expiry_is_reissued_by_the_same_ca(tmp_path: Path) -> None:
    first = ensure_broker_tls(tmp_path / "tls", now=NOW)
    first_ca = ca_of(first)
    later = NOW + dt.timedelta(days=BROKER_DAYS - 10)

    renewed = ensure_broker_tls(tmp_path / "tls", now=later)

    assert renewed.chain_pem != first.chain_pem
    assert renewed.key_pem != first.key_pem
    assert ca_of(renewed) == first_ca  # clients keep trusting the same CA file
    assert broker_certificate(renewed).not_valid_after_utc > later + dt.timedelta(days=300)


def test_a_ca_close_to_expiry_is_replaced_with_a_new_broker_certificate(tmp_path: Path) -> None:
    first_ca = ca_of(ensure_broker_tls(tmp_path / "tls", now=NOW))
    later = NOW + dt.timedelta(days=CA_DAYS - 10)

    renewed = ensure_broker_tls(tmp_path / "tls", now=later)

    assert ca_of(renewed) != first_ca
    broker_certificate(renewed).verify_directly_issued_by(ca_of(renewed))


def test_a_broker_certificate_of_another_ca_is_reissued(tmp_path: Path) -> None:
    ensure_broker_tls(tmp_path / "tls", now=NOW)
    for name in ("ca.key", "ca.pem"):
        (tmp_path / "tls" / name).unlink()  # a CA lost (or replaced by hand)

    renewed = ensure_broker_tls(tmp_path / "tls", now=NOW)

    broker_certificate(renewed).verify_directly_issued_by(ca_of(renewed))


def test_openssl_verifies_the_chain_for_the_loopback_address(tmp_path: Path) -> None:
    """An independent verifier (OpenSSL's command line) accepts what Kafka will present."""
    tls = ensure_broker_tls(tmp_path / "tls")
    (tmp_path / "broker-cert.pem").write_text(tls.chain_pem)

    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tls.ca_file), "-verify_ip", "127.0.0.1",
         "-purpose", "sslserver", str(tmp_path / "broker-cert.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_an_older_state_dir_is_made_private(tmp_path: Path) -> None:
    broker = tmp_path / "broker"
    (broker / "data" / "topic-0").mkdir(parents=True, mode=0o755)
    for path in (broker / "server.properties", broker / "data" / "topic-0" / "0.log"):
        path.write_text("resident data\n")
        path.chmod(0o644)
    broker.chmod(0o755)
    assert loose_modes(broker)

    changed = make_tree_private(broker)

    assert changed == 5
    assert loose_modes(broker) == []
    assert (broker / "data").stat().st_mode & 0o777 == 0o700
    assert (broker / "server.properties").stat().st_mode & 0o777 == 0o600


def test_rewriting_a_world_readable_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("old\n")
    path.chmod(0o644)

    write_private(path, "new\n")

    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_start_lock_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with exclusive_lock(tmp_path / "start.lock"):
            pass
    finally:
        os.umask(previous)

    assert (tmp_path / "start.lock").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("ca_file", ["/srv/state/broker/tls/ca.pem", "/home/a b/tls/ca.pem"])
def test_env_files_survive_the_shell(ca_file: str) -> None:
    text = env_file_text({"ssl_cafile": Path(ca_file)}, comment="test")

    (line,) = [line for line in text.splitlines() if line.startswith("export")]
    assert shlex.split(line) == ["export", f"DATABUS_SSL_CAFILE={ca_file}"]
