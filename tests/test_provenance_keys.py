"""Signing keys: the local CA made once with tight permissions, operator PEMs checked early."""

from __future__ import annotations

import datetime
import io
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gempix.errors import ProvenanceError
from gempix.provenance import (
    ManifestFacts,
    Provenance,
    load_credentials,
    local_credentials,
    resolve_credentials,
    verify_image,
)
from gempix.provenance import credentials as credentials_module
from gempix.provenance.samples import photograph

FACTS = ManifestFacts(model="tiny")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    photograph(2, 64).save(buffer, "PNG")
    return buffer.getvalue()


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_local_signer_is_made_once_private_and_reused(tmp_path):
    folder = tmp_path / "data" / "provenance"
    first = local_credentials(folder)
    (path,) = folder.iterdir()
    assert mode(folder) == 0o700 and mode(path) == 0o600
    assert first.local and first.algorithm == "es256"
    assert local_credentials(folder) == first  # reused, not regenerated
    chain = x509.load_pem_x509_certificates(first.chain_pem)
    signer, ca = chain
    assert signer.issuer == ca.subject and signer.issuer != signer.subject  # not self-signed
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert signer.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert b"PRIVATE KEY" in path.read_bytes() and path.read_bytes().count(b"PRIVATE KEY") == 2
    # The CA's own private key is not kept: only the signer's key is in the file.


def test_loose_permissions_are_tightened(tmp_path):
    local_credentials(tmp_path / "p")
    path = tmp_path / "p" / credentials_module.LOCAL_SIGNER_FILE
    path.chmod(0o644)
    (tmp_path / "p").chmod(0o755)
    local_credentials(tmp_path / "p")
    assert mode(path) == 0o600 and mode(tmp_path / "p") == 0o700


def test_local_signer_is_renewed_before_it_expires(tmp_path, monkeypatch):
    monkeypatch.setattr(credentials_module, "LOCAL_VALIDITY", datetime.timedelta(days=10))
    first = local_credentials(tmp_path)
    second = local_credentials(tmp_path)  # 10 days left < 30: renewed
    assert second.chain_pem != first.chain_pem
    assert mode(tmp_path / credentials_module.LOCAL_SIGNER_FILE) == 0o600


def test_damaged_local_signer_is_a_clear_error(tmp_path):
    local_credentials(tmp_path)
    path = tmp_path / credentials_module.LOCAL_SIGNER_FILE
    good = path.read_bytes()
    for damaged in (b"not a pem", good.replace(b"MIG", b"XYZ", 1), good[: len(good) // 2]):
        path.write_bytes(damaged)
        with pytest.raises(ProvenanceError, match="is damaged; delete it"):
            local_credentials(tmp_path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def operator_files(folder, key, *, expired=False, self_signed=False):
    """A CA-issued (or self-signed) signing certificate for ``key``, as an operator has."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Operator CA"))
        .issuer_name(_name("Operator CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    issuer_key = key if self_signed else ca_key
    end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=30)
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("Operator signer"))
        .issuer_name(_name("Operator signer") if self_signed else ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(credentials_module._key_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .sign(issuer_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_path, key_path = folder / "chain.pem", folder / "key.pem"
    cert_path.write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.parametrize(
    "key, algorithm",
    [
        (ec.generate_private_key(ec.SECP256R1()), "es256"),
        (ec.generate_private_key(ec.SECP384R1()), "es384"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "ps256"),
    ],
    ids=["p256", "p384", "rsa"],
)
def test_operator_certificate_signs(tmp_path, key, algorithm):
    cert_path, key_path = operator_files(tmp_path, key)
    provenance = Provenance.from_paths(tmp_path / "unused", cert_path, key_path)
    assert provenance.credentials.algorithm == algorithm and not provenance.credentials.local
    assert not (tmp_path / "unused").exists()  # no local CA made when the operator has one
    report = verify_image(provenance.sign(png_bytes(), FACTS))
    assert report.c2pa.status == "untrusted"  # intact; the test CA is on no trust list
    assert report.c2pa.codes == ("signingCredential.untrusted",)
    assert report.c2pa.chain[0].signed_by == "Operator signer"
    ca_pem = cert_path.read_bytes().split(b"-----END CERTIFICATE-----\n", 1)[1].decode()
    trusted = verify_image(provenance.sign(png_bytes(), FACTS), trust_anchors=ca_pem)
    assert trusted.c2pa.status == "valid"


def test_bad_operator_credentials_are_clear_errors(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    cert_path, key_path = operator_files(tmp_path, key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(ProvenanceError, match=r"c2pa_cert: .*garbage.pem is not a PEM certificate"):
        load_credentials(garbage, key_path)
    with pytest.raises(ProvenanceError, match=r"c2pa_key: .*garbage.pem is not an unencrypted PEM"):
        load_credentials(cert_path, garbage)
    with pytest.raises(ProvenanceError, match=r"c2pa_cert: cannot read .*missing.pem"):
        load_credentials(tmp_path / "missing.pem", key_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = operator_files(other, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ProvenanceError, match="c2pa_key: .* does not match the first certificate"):
        load_credentials(cert_path, other_key)
    with pytest.raises(ProvenanceError, match="c2pa_key: required when c2pa_cert is set"):
        resolve_credentials(tmp_path / "local", cert_path, None)
    with pytest.raises(ProvenanceError, match="c2pa_cert: required when c2pa_key is set"):
        resolve_credentials(tmp_path / "local", None, key_path)
    expired = tmp_path / "expired"
    expired.mkdir()
    with pytest.raises(ProvenanceError, match="c2pa_cert: the signing certificate .* expired on"):
        load_credentials(*operator_files(expired, key, expired=True))
    selfsigned = tmp_path / "self"
    selfsigned.mkdir()
    with pytest.raises(ProvenanceError, match="c2pa_cert: .* is self-signed"):
        load_credentials(*operator_files(selfsigned, key, self_signed=True))
