"""Who signs: an operator's certificate and key, or a local CA and signer made once.

C2PA validators check the signing certificate like this (c2pa-rs, measured with
c2pa-python 0.38): an end-entity certificate, not self-signed, with the digitalSignature key
usage, the emailProtection extended key usage, and subject and authority key identifiers.
An operator with a certificate from a CA on the C2PA trust list passes PEM paths
(``GEMPIX_C2PA_CERT`` and ``GEMPIX_C2PA_KEY``); without them GemPix makes its own CA, issues
one signing certificate from it, discards the CA's private key (nothing is left that could
issue more) and keeps the signer's chain and key in one 0600 file in a 0700 folder. Such
credentials validate, but as "untrusted": no validator knows the local CA
(docs/provenance.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import secrets
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ProvenanceError

LOCAL_SIGNER_FILE = "c2pa-local-signer.pem"
LOCAL_VALIDITY = datetime.timedelta(days=5 * 365)
RENEW_BEFORE = datetime.timedelta(days=30)
_EC_ALGORITHMS = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A PEM chain (signer first) with its private key, and the C2PA algorithm they imply."""

    chain_pem: bytes
    key_pem: bytes
    algorithm: str  # es256, es384, es512, ps256 or ed25519
    local: bool  # made by GemPix: validates as "untrusted"

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]


def load_credentials(cert_path: str | Path, key_path: str | Path) -> Credentials:
    """An operator's PEM chain and key, checked now so a mistake is found at start-up."""
    chain_pem = _read(cert_path, "c2pa_cert")
    key_pem = _read(key_path, "c2pa_key")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise ProvenanceError(
            f"c2pa_cert: {cert_path} is not a PEM certificate chain (-----BEGIN CERTIFICATE-----)."
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ProvenanceError(
            f"c2pa_key: {key_path} is not an unencrypted PEM private key (PKCS#8 or SEC1)."
        ) from None
    if _public_bytes(key.public_key()) != _public_bytes(chain[0].public_key()):
        raise ProvenanceError(
            f"c2pa_key: {key_path} does not match the first certificate in {cert_path} "
            "(the chain must start with the signing certificate)."
        )
    now = datetime.datetime.now(datetime.timezone.utc)
    if chain[0].not_valid_after_utc <= now:
        raise ProvenanceError(
            f"c2pa_cert: the signing certificate in {cert_path} expired on "
            f"{chain[0].not_valid_after_utc:%Y-%m-%d}."
        )
    if chain[0].issuer == chain[0].subject:
        raise ProvenanceError(
            f"c2pa_cert: the signing certificate in {cert_path} is self-signed; C2PA needs one "
            "issued by a CA (docs/provenance.md)."
        )
    return Credentials(chain_pem, key_pem, _algorithm(key, "c2pa_key"), local=False)


def local_credentials(folder: str | Path) -> Credentials:
    """The local signer in ``folder`` (made on first use, renewed 30 days before expiry)."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / LOCAL_SIGNER_FILE
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        credentials = _parse_local(path.read_bytes(), path)
        expires = credentials.certificate.not_valid_after_utc
        if expires - RENEW_BEFORE > datetime.datetime.now(datetime.timezone.utc):
            return credentials
        path.unlink(missing_ok=True)
    _write_once(path, _issue_local_signer())
    return _parse_local(path.read_bytes(), path)


def resolve_credentials(
    folder: str | Path, cert_path: str | Path | None = None, key_path: str | Path | None = None
) -> Credentials:
    """The operator's credentials when both paths are given, else the local signer."""
    if bool(cert_path) != bool(key_path):
        given, missing = ("c2pa_cert", "c2pa_key") if cert_path else ("c2pa_key", "c2pa_cert")
        raise ProvenanceError(f"{missing}: required when {given} is set (a PEM chain and its key).")
    if cert_path and key_path:
        return load_credentials(cert_path, key_path)
    return local_credentials(folder)


def _read(path: str | Path, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ProvenanceError(f"{field}: cannot read {path}: {error.strerror}.") from None


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _algorithm(key, field: str) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_ALGORITHMS:
        return _EC_ALGORITHMS[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ProvenanceError(
        f"{field}: {type(key).__name__} keys cannot sign C2PA manifests; use EC P-256/384/521, "
        "RSA (PS256) or Ed25519."
    )


def _parse_local(data: bytes, path: Path) -> Credentials:
    try:
        key_pem, chain_pem = data.split(b"-----END PRIVATE KEY-----\n", 1)
        key_pem += b"-----END PRIVATE KEY-----\n"
        serialization.load_pem_private_key(key_pem, password=None)
        x509.load_pem_x509_certificates(chain_pem)
    except (ValueError, TypeError):
        raise ProvenanceError(
            f"The local C2PA signer {path} is damaged; delete it and GemPix makes a new one."
        ) from None
    return Credentials(chain_pem, key_pem, "es256", local=True)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GemPix (local, unverified)"),
        ]
    )


def _key_usage(signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def _issue_local_signer() -> bytes:
    """PEM of a fresh P-256 signing key, its certificate and the CA certificate that issued it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name, name = _name("GemPix local CA"), _name("GemPix local signer")

    def certificate(subject, public_key, is_ca):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + LOCAL_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), True)
            .add_extension(_key_usage(signer=not is_ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    ca = certificate(ca_name, ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    signer = (
        certificate(name, key.public_key(), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return key_pem + signer.public_bytes(pem) + ca.public_bytes(pem)


def _write_once(path: Path, data: bytes) -> None:
    """Write under a temporary 0600 name, then link into place: when two processes start at
    once the first link wins and both read the same complete file."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
    finally:
        partial.unlink(missing_ok=True)
