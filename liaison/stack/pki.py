"""A test PKI standing for IGC-Santé: a root CA, a server certificate, client certificates.

Client certificates carry an e-mail address as their identity (SAN rfc822Name and CN),
the way an MSSanté applicative mailbox's certificate names its mailbox. A separate
"foreign" CA issues one client certificate that nothing trusts, for refusal tests.
Everything is written once under `root` and reused by the next run (keys 0600).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from liaison.clock import SystemClock

CA_NAME = "IGC-Santé TEST Liaison"
FOREIGN_CA_NAME = "Autorité étrangère TEST"
FOREIGN_ADDRESS = "intrus@autorite-etrangere.test"
_VALID_DAYS = 3650


def _now() -> dt.datetime:
    return SystemClock().now()   # the certificates' validity starts now, on the wall clock


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.replace(path)


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return cert, key  # type: ignore[return-value]


def _name(cn: str, org: str = "Liaison TEST") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str,
           san: list[x509.GeneralName], usage: list[x509.ObjectIdentifier]
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _file_stem(address: str) -> str:
    return re.sub(r"[^a-z0-9.@+-]", "_", address.lower()).replace("@", "_at_")


class TestPki:
    """The test PKI under `root`: `ensure()` once, then ask for paths."""

    __test__ = False  # not a pytest class

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def crl(self) -> Path:
        return self.root / "ca.crl.pem"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def foreign_ca_cert(self) -> Path:
        return self.root / "foreign-ca.pem"

    @property
    def foreign_cert(self) -> Path:
        return self.root / "foreign-client.pem"

    @property
    def foreign_key(self) -> Path:
        return self.root / "foreign-client.key"

    def ensure(self) -> None:
        """Create what is missing; reuse what exists."""
        # The keys are read by the gateway (Dovecot's config process runs as root) and our own clients only.
        for folder in (self.root, self.root / "clients"):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            ca, ca_key = _make_ca(CA_NAME)
            _write_key(self.ca_key, ca_key)
            _write_cert(self.ca_cert, ca)
            for stale in (self.server_cert, self.crl):
                stale.unlink(missing_ok=True)
            for stale in (self.root / "clients").glob("*"):
                stale.unlink()
        ca, ca_key = _load(self.ca_cert, self.ca_key)
        if not (self.server_cert.exists() and self.server_key.exists()):
            san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            cert, key = _issue(ca, ca_key, "localhost", san, [ExtendedKeyUsageOID.SERVER_AUTH])
            _write_key(self.server_key, key)
            _write_cert(self.server_cert, cert)
        if not self.crl.exists():
            self._write_crl(ca, ca_key)
        if not (self.foreign_cert.exists() and self.foreign_key.exists()):
            fca, fca_key = _make_ca(FOREIGN_CA_NAME)
            _write_cert(self.foreign_ca_cert, fca)
            cert, key = _issue(fca, fca_key, FOREIGN_ADDRESS, [x509.RFC822Name(FOREIGN_ADDRESS)],
                               [ExtendedKeyUsageOID.CLIENT_AUTH])
            _write_key(self.foreign_key, key)
            _write_cert(self.foreign_cert, cert)

    def _write_crl(self, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> None:
        crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(_now() - dt.timedelta(days=1))
               .next_update(_now() + dt.timedelta(days=_VALID_DAYS))
               .add_extension(x509.CRLNumber(1), critical=False)
               .sign(ca_key, hashes.SHA256()))
        tmp = self.crl.with_suffix(".tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        tmp.replace(self.crl)

    def client(self, address: str) -> tuple[Path, Path]:
        """(cert, key) for a client whose identity is `address`, issued by the test CA."""
        address = address.lower()
        stem = _file_stem(address)
        cert_path = self.root / "clients" / f"{stem}.pem"
        key_path = self.root / "clients" / f"{stem}.key"
        if not (cert_path.exists() and key_path.exists()):
            ca, ca_key = _load(self.ca_cert, self.ca_key)
            cert, key = _issue(ca, ca_key, address, [x509.RFC822Name(address)],
                               [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION])
            _write_key(key_path, key)
            _write_cert(cert_path, cert)
        return cert_path, key_path
