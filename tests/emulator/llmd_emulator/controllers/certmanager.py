"""cert-manager stand-in: Issuers/ClusterIssuers become Ready, Certificates get TLS Secrets.

Certificates are signed by the emulator CA (`emu.ca`). A CA issuer whose secret is missing gets
one (holding the emulator CA), which is how the KServe overlay's `opendatahub-ca-issuer`
ClusterIssuer ends up with Secret cert-manager/opendatahub-ca.
"""

from __future__ import annotations

import base64
import datetime
from typing import TYPE_CHECKING

from .base import Controller, Key, Obj, key_of, set_condition

if TYPE_CHECKING:
    from ..core import Emulator

API = "cert-manager.io/v1"
CLUSTER_RESOURCE_NAMESPACE = "cert-manager"


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def _stamp(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class CertManager:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.issuers = Controller(emu, "issuer", self.reconcile_issuer)
        self.issuers.watch(API, "Issuer")
        self.cluster_issuers = Controller(emu, "clusterissuer", self.reconcile_cluster_issuer)
        self.cluster_issuers.watch(API, "ClusterIssuer")
        self.certificates = Controller(emu, "certificate", self.reconcile_certificate)
        self.certificates.watch(API, "Certificate")
        self.certificates.watch("v1", "Secret", self._certs_for_secret)
        self.cluster_issuers.watch("v1", "Namespace", lambda _e, _o: self._all_cluster_issuers())

    def _all_cluster_issuers(self) -> list[Key]:
        return [key_of(o) for o in self.store.list(API, "ClusterIssuer")]

    def _certs_for_secret(self, event: str, secret: Obj) -> list[Key]:
        if event != "DELETED":
            return []
        ns, name = key_of(secret)
        return [
            key_of(c)
            for c in self.store.list(API, "Certificate", ns)
            if c["spec"].get("secretName") == name
        ]

    def _tls_secret(self, ns: str, name: str, cert: str | bytes, key: str | bytes) -> None:
        if self.store.get("v1", "Secret", name, ns) is not None:
            return
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": _b64(cert),
                    "tls.key": _b64(key),
                    "ca.crt": _b64(self.emu.ca.cert_pem),
                },
            }
        )

    def _ready(self, obj: Obj, ok: bool, reason: str, message: str) -> None:
        status = dict(obj.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or ()]
        set_condition(
            conds,
            "Ready",
            "True" if ok else "False",
            reason,
            message,
            observedGeneration=obj["metadata"].get("generation", 1),
        )
        status["conditions"] = conds
        if status != obj.get("status"):
            obj["status"] = status
            self.store.update_status(obj)

    def _reconcile_any_issuer(self, issuer: Obj, secret_ns: str) -> None:
        spec = issuer.get("spec") or {}
        if "ca" in spec:
            secret = spec["ca"].get("secretName", "")
            if self.store.get("v1", "Namespace", secret_ns) is None:
                self._ready(
                    issuer,
                    False,
                    "ErrGetKeyPair",
                    f'Error getting keypair for CA issuer: secrets "{secret}" not found',
                )
                return
            self._tls_secret(secret_ns, secret, self.emu.ca.cert_pem, self.emu.ca.key_pem)
            self._ready(issuer, True, "KeyPairVerified", "Signing CA verified")
        elif "selfSigned" in spec:
            self._ready(issuer, True, "IsReady", "")
        else:
            self._ready(
                issuer,
                True,
                "ACMEAccountRegistered",
                "The ACME account was registered with the ACME server",
            )

    def reconcile_issuer(self, key: Key) -> None:
        issuer = self.store.get(API, "Issuer", key[1], key[0])
        if issuer is not None:
            self._reconcile_any_issuer(issuer, key[0])

    def reconcile_cluster_issuer(self, key: Key) -> None:
        issuer = self.store.get(API, "ClusterIssuer", key[1])
        if issuer is not None:
            self._reconcile_any_issuer(issuer, CLUSTER_RESOURCE_NAMESPACE)

    def reconcile_certificate(self, key: Key) -> None:
        cert = self.store.get(API, "Certificate", key[1], key[0])
        if cert is None:
            return
        spec = cert.get("spec") or {}
        secret = spec.get("secretName")
        if not secret:
            return
        if spec.get("isCA"):
            pem, key_pem = self.emu.ca.cert_pem, self.emu.ca.key_pem
        else:
            hosts = list(spec.get("dnsNames") or []) + list(spec.get("ipAddresses") or [])
            hosts = hosts or [spec.get("commonName") or cert["metadata"]["name"]]
            pem, key_pem = self.emu.ca.issue_server_cert(hosts)
        self._tls_secret(key[0], secret, pem, key_pem)
        now = datetime.datetime.now(datetime.UTC)
        status = dict(cert.get("status") or {})
        if "notBefore" not in status:
            status.update(
                notBefore=_stamp(now),
                notAfter=_stamp(now + datetime.timedelta(days=90)),
                renewalTime=_stamp(now + datetime.timedelta(days=60)),
                revision=1,
            )
            cert["status"] = status
        self._ready(cert, True, "Ready", "Certificate is up to date and has not expired")
