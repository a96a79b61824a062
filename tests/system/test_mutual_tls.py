"""Mutual TLS to a GP Connect provider: a local HTTPS server that demands a client certificate (made in the test,
signed by a CA made in the test) refuses the adapter without its certificate and answers it with one."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from patient_online.adapters.gpconnect import Deployment, GPConnectClinicalSystem, create
from patient_online.adapters.gpconnect.constants import Interaction
from patient_online.adapters.registry import AdapterContext
from patient_online.domain.errors import ClinicalSystemUnavailable


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    **kind: Any,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer[0] if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if kind.get("ca"):
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if kind.get("server") else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if kind.get("server"):
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


class _Provider(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tls_provider(tmp_path: Path) -> Iterator[tuple[str, str, tuple[str, str]]]:
    """(base URL, CA bundle, (client cert, client key)) of an HTTPS server that requires a client certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Test CA", ca_key, None, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, (ca.subject, ca_key), server=True)
    client = _certificate("gateway", client_key, (ca.subject, ca_key))
    ca_path, _ = _write(tmp_path, "ca", ca, ca_key)
    server_files = _write(tmp_path, "server", server, server_key)
    client_files = _write(tmp_path, "client", client, client_key)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*server_files)
    context.load_verify_locations(ca_path)
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}/fhir", ca_path, client_files
    finally:
        httpd.shutdown()
        httpd.server_close()


def _system(base_url: str, settings: dict[str, str]) -> GPConnectClinicalSystem:
    deployment = Deployment.from_settings({"ENV": "development", **settings})
    options = {"base_url": base_url, "provider_asid": "918999198738", "consumer_asid": "200000000359"}
    system = create(AdapterContext("A12345", {**options, "read_timeout": "3"}, {"gpconnect": deployment}))
    assert isinstance(system, GPConnectClinicalSystem)
    return system


def test_without_the_client_certificate_the_provider_refuses(tls_provider: tuple[str, str, tuple[str, str]]) -> None:
    base_url, ca_bundle, _client = tls_provider
    system = _system(base_url, {"GPCONNECT_CA_BUNDLE": ca_bundle})
    try:
        with pytest.raises(ClinicalSystemUnavailable):
            system.http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    finally:
        system.close()


def test_with_the_client_certificate_the_provider_answers(tls_provider: tuple[str, str, tuple[str, str]]) -> None:
    base_url, ca_bundle, (cert, key) = tls_provider
    system = _system(
        base_url, {"GPCONNECT_CA_BUNDLE": ca_bundle, "GPCONNECT_CLIENT_CERT": cert, "GPCONNECT_CLIENT_KEY": key}
    )
    try:
        reply = system.http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
        assert reply.status == 200 and reply.body["resourceType"] == "Bundle"
    finally:
        system.close()


def test_an_unknown_server_certificate_is_not_trusted(tls_provider: tuple[str, str, tuple[str, str]]) -> None:
    base_url, _ca_bundle, (cert, key) = tls_provider
    system = _system(base_url, {"GPCONNECT_CLIENT_CERT": cert, "GPCONNECT_CLIENT_KEY": key})
    try:
        with pytest.raises(ClinicalSystemUnavailable):
            system.http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    finally:
        system.close()
