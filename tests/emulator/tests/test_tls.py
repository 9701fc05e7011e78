"""The emulator's CA: server certificates for long Service names."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from llmd_emulator.tls import CA


def test_a_host_longer_than_a_common_name_still_gets_a_certificate():
    # The FQDN of the workload Service of qwen2-3b-pattern1 in llm-d-inference-scheduling: 68
    # characters, more than the 64 a common name holds.
    host = "qwen2-3b-pattern1-kserve-workload-svc.llm-d-inference-scheduling.svc"
    assert len(host) > 64
    cert_pem, _key = CA().issue_server_cert([host, "localhost"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "qwen2-3b-pattern1-kserve-workload-svc"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host in sans.get_values_for_type(x509.DNSName)
