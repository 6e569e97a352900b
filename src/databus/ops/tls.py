"""Certificates of the secure local broker: a private CA and a broker certificate it signs.

Made with the ``cryptography`` package on the first secure start and kept (PEM, mode
0600) in ``<state dir>/broker/tls/``. Clients trust only ``ca.pem`` (``DATABUS_SSL_CAFILE``)
and check the host name, so the broker certificate names the loopback address and
``localhost``. Kafka reads a PEM key store from a file only if its key is encrypted, and
Java 17 cannot decrypt the PBES2 keys ``cryptography`` makes, so the broker's key and
chain go into ``server.properties`` (0600 too) as PEM values. A broker certificate close
to expiry (or not signed by the kept CA) is re-issued on the next start; the CA is kept
for ten years so that clients keep trusting it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from databus.errors import BrokerError
from databus.ops.private_files import private_dir, write_private

#: The CA certificate's file name in the TLS directory.
CA_FILE = "ca.pem"
#: Names the broker certificate is valid for (clients connect to 127.0.0.1).
BROKER_IP = "127.0.0.1"
BROKER_DNS = "localhost"
CA_DAYS = 3650
BROKER_DAYS = 365
#: A certificate expiring sooner than this is replaced on the next start.
RENEW_BEFORE = dt.timedelta(days=30)
#: A CA signs certificates and nothing else.
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip
#: Clocks of a laptop and a CI runner may differ a little.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class BrokerTls:
    """The broker's key and certificate chain (PEM), and where the CA certificate is."""

    ca_file: Path
    """The CA certificate clients trust (``DATABUS_SSL_CAFILE``)."""
    key_pem: str
    """The broker's private key (PKCS#8, not encrypted)."""
    chain_pem: str
    """The broker's certificate, then the CA's."""

    def __repr__(self) -> str:
        return f"BrokerTls(ca_file={self.ca_file}, key_pem=***)"

    def server_properties(self) -> dict[str, str]:
        """``server.properties`` entries: one key store and one trust store for every
        listener (the broker's own connections to its controller verify it too)."""
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": self.key_pem,
            "ssl.keystore.certificate.chain": self.chain_pem,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "ssl.client.auth": "none",
        }


@dataclass(frozen=True)
class _Paths:
    ca_key: Path
    ca_cert: Path
    key: Path
    chain: Path


def _paths(tls_dir: Path) -> _Paths:
    return _Paths(
        tls_dir / "ca.key", tls_dir / CA_FILE, tls_dir / "broker.key", tls_dir / "broker.pem"
    )


def tls_files(tls_dir: Path) -> BrokerTls | None:
    """The TLS material already in ``tls_dir``, without making any; ``None`` if absent."""
    paths = _paths(tls_dir)
    if not (paths.ca_cert.is_file() and paths.key.is_file() and paths.chain.is_file()):
        return None
    return BrokerTls(paths.ca_cert, paths.key.read_text(), paths.chain.read_text())


def ensure_broker_tls(tls_dir: Path, *, now: dt.datetime | None = None) -> BrokerTls:
    """The broker's CA and certificate, made on first use and renewed when due."""
    moment = now or dt.datetime.now(dt.UTC)
    private_dir(tls_dir)
    paths = _paths(tls_dir)
    ca = _load_ca(paths, moment)
    if ca is None:
        ca = _new_ca(moment)
        write_private(paths.ca_key, _key_pem(ca[0]))
        write_private(paths.ca_cert, ca[1].public_bytes(serialization.Encoding.PEM).decode())
    ca_key, ca_cert = ca
    current = tls_files(tls_dir)
    if current is not None and _broker_cert_is_good(current, ca_cert, moment):
        return current
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _broker_cert(key, ca_key, ca_cert, moment)
    chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, ca_cert))
    write_private(paths.key, _key_pem(key))
    write_private(paths.chain, chain)
    return BrokerTls(paths.ca_cert, _key_pem(key), chain)


def broker_certificate(tls: BrokerTls) -> x509.Certificate:
    """The broker's own certificate (the first one of its chain)."""
    return x509.load_pem_x509_certificate(tls.chain_pem.encode())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _load_ca(
    paths: _Paths, moment: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    """The kept CA if it is whole and not about to expire."""
    if not (paths.ca_key.is_file() and paths.ca_cert.is_file()):
        return None
    try:
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    except ValueError as error:
        where = paths.ca_cert.parent
        raise BrokerError(f"cannot read the broker's CA in {where}: {error}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < moment:
        return None
    return key, cert


def _new_ca(moment: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "databus local broker"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"databus local CA {secrets.token_hex(4)}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - _BACKDATE)
        .not_valid_after(moment + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _broker_cert(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    moment: dt.datetime,
) -> x509.Certificate:
    names = [x509.IPAddress(ipaddress.ip_address(BROKER_IP)), x509.DNSName(BROKER_DNS)]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_DNS)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - _BACKDATE)
        .not_valid_after(moment + dt.timedelta(days=BROKER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _broker_cert_is_good(tls: BrokerTls, ca_cert: x509.Certificate, moment: dt.datetime) -> bool:
    """Signed by our CA, naming the loopback address, and not about to expire."""
    try:
        cert = broker_certificate(tls)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    has_ip = ipaddress.ip_address(BROKER_IP) in names.get_values_for_type(x509.IPAddress)
    return has_ip and cert.not_valid_after_utc - RENEW_BEFORE >= moment
