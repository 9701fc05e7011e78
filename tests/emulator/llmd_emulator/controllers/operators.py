"""The operators of the pinned charts, as their upstream sources behave (docs/conformance.md).

Each operator acts only while its own Deployment (installed by its chart) has an available
replica: held back (scenario operator-held:<name>), it writes nothing, as a stopped operator.

- cert-manager operator (openshift/cert-manager-operator, branch cert-manager-1.15 at d0c162f1,
  the chart's bundle v1.15.2): for CertManager/cluster with managementState Managed it runs the
  operands, Deployments cert-manager, cert-manager-webhook and cert-manager-cainjector in
  namespace cert-manager (bindata/cert-manager-deployment/*; images from the operator's
  RELATED_IMAGE_* variables), and writes only library-go's prefixed conditions: per operand
  `cert-manager-<x>-deployment{Available,Progressing,Degraded}` (deploymentcontroller) and
  `cert-manager-<x>-static-resources-Degraded` (staticresourcecontroller). It writes no plain
  `Available`: there is no status controller that would sum them up.
- Sail operator (istio-ecosystem/sail-operator 1.27.3, the OSSM 3.2 bundle of the chart): for an
  Istio it creates the IstioRevision of the same name and the istiod Deployment in spec.namespace;
  the Istio's Reconciled, Ready and DependenciesHealthy conditions are the IstioRevision's
  (Ready: istiod's ready replicas), its state the first failing condition's reason or Healthy.
  Once istiod is ready it also has GatewayClass istio (what istiod creates).
- LWS operator (openshift/lws-operator, branch konflux-lws-operator-1-0 at bddf66ee, the chart's
  bundle 1.0): for LeaderWorkerSetOperator/cluster it fails while cert-manager's Issuer kind is not
  served (TargetConfigControllerDegraded, "please make sure that cert-manager is installed on your
  cluster"), creates Issuer lws-selfsigned-issuer and Certificates lws-serving-cert and
  lws-metrics-cert, waits for their Secrets, applies its ServiceMonitor (monitoring.coreos.com/v1,
  which it cannot while that kind is not served: the sync stops there with the client's 404
  "the server could not find the requested resource" and a ServiceMonitorCreateFailed event),
  then runs Deployment lws-controller-manager and sets Available True.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from .base import Controller, Key, Obj, owner_ref, set_condition

if TYPE_CHECKING:
    from ..core import Emulator

GATEWAY_API = "gateway.networking.k8s.io/v1"
CERT_MANAGER_API = "cert-manager.io/v1"
CERT_MANAGER_KIND = ("operator.openshift.io", "operator.openshift.io/v1alpha1", "CertManager")
LWS_KIND = ("operator.openshift.io", "operator.openshift.io/v1", "LeaderWorkerSetOperator")
# The ServiceMonitor the LWS operator applies before its Deployment (bindata/assets/
# lws-controller-generated/monitoring.coreos.com_v1_servicemonitor_lws-controller-manager-
# metrics-monitor.yaml), through a dynamic client.
MONITORING_API = "monitoring.coreos.com/v1"
LWS_SERVICE_MONITOR = "lws-controller-manager-metrics-monitor"
# What client-go's dynamic client returns for a 404 whose body is not a Status (the API server's
# http.NotFound for a group it does not serve): rest/request.go newUnstructuredResponseError with
# no resource (AbsPath), errors.NewGenericServerResponse.
NOT_FOUND_MESSAGE = "the server could not find the requested resource"
ISTIO_KIND = ("sailoperator.io", "sailoperator.io/v1", "Istio")
# The operator Deployment of each chart (the charts' templates).
OPERATOR_DEPLOYMENT = {
    "CertManager": "cert-manager-operator-controller-manager",
    "LeaderWorkerSetOperator": "openshift-lws-operator",
    "Istio": "servicemesh-operator3",
}
# cert-manager's operand namespace (pkg/operator/operatorclient TargetNamespace).
CERT_MANAGER_NAMESPACE = "cert-manager"
# Operand: (controller name prefix, Deployment, component, app label, RELATED_IMAGE variable,
# the image of the manifest, its command and arguments) from bindata/cert-manager-deployment.
_CM_OPERANDS = (
    (
        "cert-manager-controller",
        "cert-manager",
        "controller",
        "cert-manager",
        "RELATED_IMAGE_CERT_MANAGER_CONTROLLER",
        "quay.io/jetstack/cert-manager-controller:v1.15.5",
        ["/app/cmd/controller/controller"],
        ["--v=2", "--cluster-resource-namespace=$(POD_NAMESPACE)"],
    ),
    (
        "cert-manager-webhook",
        "cert-manager-webhook",
        "webhook",
        "webhook",
        "RELATED_IMAGE_CERT_MANAGER_WEBHOOK",
        "quay.io/jetstack/cert-manager-webhook:v1.15.5",
        ["/app/cmd/webhook/webhook"],
        ["--v=2", "--secure-port=10250"],
    ),
    (
        "cert-manager-cainjector",
        "cert-manager-cainjector",
        "cainjector",
        "cainjector",
        "RELATED_IMAGE_CERT_MANAGER_CA_INJECTOR",
        "quay.io/jetstack/cert-manager-cainjector:v1.15.5",
        ["/app/cmd/cainjector/cainjector"],
        ["--v=2", "--leader-election-namespace=kube-system"],
    ),
)
CERT_MANAGER_DEPLOYMENTS = tuple(op[1] for op in _CM_OPERANDS)
LWS_CONTROLLER = "lws-controller-manager"
LWS_ISSUER = "lws-selfsigned-issuer"
# Certificate -> Secret (bindata/assets/lws-controller-generated, target_config_reconciler.go).
LWS_CERTIFICATES = {
    "lws-serving-cert": "webhook-server-cert",
    "lws-metrics-cert": "metrics-server-cert",
}
LWS_SERVICES = {
    "lws-serving-cert": "lws-webhook-service",
    "lws-metrics-cert": "lws-controller-manager-metrics-service",
}
ISTIOD_IMAGE = "registry.redhat.io/openshift-service-mesh/istio-pilot-rhel9"


def _set(conds: list[Obj], type_: str, status: str, reason: str = "", message: str = "") -> None:
    """An operator condition: reason and message are omitted when empty (omitempty upstream)."""
    set_condition(conds, type_, status, reason, message)
    for cond in conds:
        if cond["type"] == type_:
            for field in ("reason", "message"):
                if not cond.get(field):
                    cond.pop(field, None)


def _available(deploy: Obj | None) -> int:
    return int(((deploy or {}).get("status") or {}).get("availableReplicas") or 0)


def _deployment(name: str, namespace: str, labels: dict, container: Obj, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [container],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                },
            },
        },
    }


class Operators:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.controller = Controller(emu, "operators", self.reconcile)
        for _group, api, kind in (CERT_MANAGER_KIND, LWS_KIND, ISTIO_KIND):
            self.controller.watch(api, kind, self._own_key)
        self.controller.watch("apps/v1", "Deployment", self._for_deployment)
        self.controller.watch("v1", "Secret", self._for_secret)
        self.controller.watch(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", lambda _e, _o: self._all()
        )

    @staticmethod
    def _key(kind: tuple[str, str, str], name: str) -> Key:
        return ("|".join(kind), name)

    def _own_key(self, _event: str, obj: Obj) -> list[Key]:
        group = obj["apiVersion"].split("/")[0]
        return [(f"{group}|{obj['apiVersion']}|{obj['kind']}", obj["metadata"]["name"])]

    def _all(self) -> list[Key]:
        keys = []
        for kind in (CERT_MANAGER_KIND, LWS_KIND, ISTIO_KIND):
            if self.store.is_known(kind[1], kind[2]):
                keys += [self._key(kind, o["metadata"]["name"]) for o in self.store.list(*kind[1:])]
        return keys

    def _for_deployment(self, _event: str, deploy: Obj) -> list[Key]:
        name = deploy["metadata"]["name"]
        if (
            name in OPERATOR_DEPLOYMENTS
            or name in CERT_MANAGER_DEPLOYMENTS
            or name
            in (
                LWS_CONTROLLER,
                "istiod",
            )
        ):
            return self._all()
        return []

    def _for_secret(self, _event: str, secret: Obj) -> list[Key]:
        if secret["metadata"]["name"] in LWS_CERTIFICATES.values():
            return self._all()
        return []

    def _operator(self, kind: str) -> Obj | None:
        """The operator's Deployment when it has an available replica (else it does nothing)."""
        name = OPERATOR_DEPLOYMENT[kind]
        for deploy in self.store.list("apps/v1", "Deployment"):
            if deploy["metadata"]["name"] == name and _available(deploy) > 0:
                return deploy
        return None

    def reconcile(self, key: Key) -> None:
        _group, api, kind = key[0].split("|")
        obj = self.store.get(api, kind, key[1])
        if obj is None:
            return
        operator = self._operator(kind)
        if operator is None:
            return
        if kind == "CertManager":
            self._cert_manager(obj, operator)
        elif kind == "LeaderWorkerSetOperator":
            self._lws(obj, operator)
        elif kind == "Istio":
            self._istio(obj)

    def _write_status(self, obj: Obj, status: Obj) -> None:
        if status != obj.get("status"):
            obj["status"] = status
            self.store.update_status(obj)

    def _ensure(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        found = self.store.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        return found if found is not None else self.store.create(obj)

    # ------------------------------------------------------------------ cert-manager operator
    def _cert_manager(self, cm: Obj, operator: Obj) -> None:
        if (cm.get("spec") or {}).get("managementState", "Managed") != "Managed":
            return
        if self.store.get("v1", "Namespace", CERT_MANAGER_NAMESPACE) is None:
            # The static resources create the namespace (cert-manager-namespace.yaml).
            self.store.create(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": CERT_MANAGER_NAMESPACE},
                }
            )
        env = {
            e.get("name"): e.get("value")
            for c in operator["spec"]["template"]["spec"].get("containers") or ()
            for e in c.get("env") or ()
        }
        status = copy.deepcopy(cm.get("status") or {})
        conds = status.setdefault("conditions", [])
        for prefix, name, component, app, image_var, image, command, args in _CM_OPERANDS:
            labels = {
                "app": app,
                "app.kubernetes.io/component": component,
                "app.kubernetes.io/instance": "cert-manager",
                "app.kubernetes.io/name": app,
            }
            container = {
                "name": name if name != "cert-manager" else "cert-manager-controller",
                "image": env.get(image_var) or image,
                "command": command,
                "args": args,
            }
            # The static resources' ServiceAccount (bindata/cert-manager-deployment/*/*-sa.yaml):
            # without it the ServiceAccount admission refuses the operand's pods.
            self._ensure(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "automountServiceAccountToken": True,
                    "metadata": {
                        "name": name,
                        "namespace": CERT_MANAGER_NAMESPACE,
                        "labels": dict(labels),
                    },
                }
            )
            deploy = _deployment(name, CERT_MANAGER_NAMESPACE, labels, container)
            deploy["spec"]["template"]["spec"]["serviceAccountName"] = name
            deploy = self._ensure(deploy)
            _set(conds, f"{prefix}-static-resources-Degraded", "False", "AsExpected")
            controller = f"{prefix}-deployment"
            if _available(deploy) > 0:
                _set(conds, f"{controller}Available", "True")
            else:
                _set(
                    conds, f"{controller}Available", "False", "Deploying", "Waiting for Deployment"
                )
            progressing = _progressing(deploy)
            if progressing:
                _set(conds, f"{controller}Progressing", "True", "Deploying", progressing)
            else:
                _set(conds, f"{controller}Progressing", "False")
            _set(conds, f"{controller}Degraded", "False", "AsExpected")
        self._write_status(cm, status)

    # ------------------------------------------------------------------------ LWS operator
    def _lws(self, lws: Obj, operator: Obj) -> None:
        if (lws.get("spec") or {}).get("managementState", "Managed") != "Managed":
            return
        namespace = operator["metadata"]["namespace"]
        status = copy.deepcopy(lws.get("status") or {})
        conds = status.setdefault("conditions", [])
        error = self._lws_sync(lws, operator, namespace)
        if error:
            _set(conds, "TargetConfigControllerDegraded", "True", "SyncError", error)
        else:
            _set(conds, "Available", "True")
            _set(conds, "TargetConfigControllerDegraded", "False", "AsExpected")
            deploy = self.store.get("apps/v1", "Deployment", LWS_CONTROLLER, namespace)
            status["readyReplicas"] = _available(deploy)
        self._write_status(lws, status)

    def _lws_sync(self, lws: Obj, operator: Obj, namespace: str) -> str:
        """target_config_reconciler.go sync(): the error it stops at, or '' when it got through."""
        if not self.store.is_known(CERT_MANAGER_API, "Issuer"):
            return "please make sure that cert-manager is installed on your cluster"
        ref = owner_ref(lws, controller=False)
        self._ensure(
            {
                "apiVersion": CERT_MANAGER_API,
                "kind": "Issuer",
                "metadata": {"name": LWS_ISSUER, "namespace": namespace, "ownerReferences": [ref]},
                "spec": {"selfSigned": {}},
            }
        )
        for cert, secret in LWS_CERTIFICATES.items():
            service = LWS_SERVICES[cert]
            self._ensure(
                {
                    "apiVersion": CERT_MANAGER_API,
                    "kind": "Certificate",
                    "metadata": {"name": cert, "namespace": namespace, "ownerReferences": [ref]},
                    "spec": {
                        "dnsNames": [
                            f"{service}.{namespace}.svc",
                            f"{service}.{namespace}.svc.cluster.local",
                        ],
                        "issuerRef": {
                            "group": "cert-manager.io",
                            "kind": "Issuer",
                            "name": LWS_ISSUER,
                        },
                        "secretName": secret,
                    },
                }
            )
            found = self.store.get("v1", "Secret", secret, namespace)
            if found is None:
                return f'secret "{secret}" not found'
            data = found.get("data") or {}
            if not data.get("tls.crt") or not data.get("tls.key"):
                return f"{secret} secret is not initialized"
        # manageServiceMonitor (ApplyServiceMonitor -> library-go ApplyUnstructuredResourceImproved:
        # Get, NotFound, Create; reportCreateEvent on failure), after the webhooks and before
        # manageDeployments.
        if not self.store.is_known(MONITORING_API, "ServiceMonitor"):
            self.store.record_event(
                operator,
                "ServiceMonitorCreateFailed",
                f"Failed to create ServiceMonitor.monitoring.coreos.com/{LWS_SERVICE_MONITOR} "
                f"-n {namespace}: {NOT_FOUND_MESSAGE}",
                type="Warning",
                component="openshift-lws-operator",
            )
            return NOT_FOUND_MESSAGE
        self._ensure(
            {
                "apiVersion": MONITORING_API,
                "kind": "ServiceMonitor",
                "metadata": {
                    "name": LWS_SERVICE_MONITOR,
                    "namespace": namespace,
                    "labels": {"control-plane": "controller-manager"},
                    "ownerReferences": [ref],
                },
                "spec": {
                    "endpoints": [{"path": "/metrics", "port": "https", "scheme": "https"}],
                    "selector": {"matchLabels": {"control-plane": "controller-manager"}},
                },
            }
        )
        labels = {"control-plane": "controller-manager"}
        container = {"name": "manager", "command": ["/manager"], "args": ["--zap-log-level=2"]}
        deploy = _deployment(LWS_CONTROLLER, namespace, labels, container, replicas=2)
        deploy["metadata"]["ownerReferences"] = [ref]
        self._ensure(deploy)
        return ""

    # ------------------------------------------------------------------------ Sail operator
    def _istio(self, istio: Obj) -> None:
        spec = istio.get("spec") or {}
        namespace = spec.get("namespace") or "istio-system"
        name = istio["metadata"]["name"]
        revision = (
            self._ensure(
                {
                    "apiVersion": "sailoperator.io/v1",
                    "kind": "IstioRevision",
                    "metadata": {"name": name, "ownerReferences": [owner_ref(istio)]},
                    "spec": {
                        "version": spec.get("version", ""),
                        "namespace": namespace,
                        "values": copy.deepcopy(spec.get("values") or {}),
                    },
                }
            )
            if self.store.is_known("sailoperator.io/v1", "IstioRevision")
            else None
        )
        istiod = None
        if self.store.get("v1", "Namespace", namespace) is not None:
            labels = {"app": "istiod", "istio.io/rev": "default", "istio": "pilot"}
            container = {"name": "discovery", "image": ISTIOD_IMAGE, "args": ["discovery"]}
            deploy = _deployment("istiod", namespace, labels, container)
            if revision is not None:
                deploy["metadata"]["ownerReferences"] = [owner_ref(revision)]
            istiod = self._ensure(deploy)
        # determineReadyCondition (istiorevision_controller.go)
        if istiod is None:
            ready = ("False", "IstiodNotReady", "istiod Deployment not found")
        else:
            st = istiod.get("status") or {}
            replicas, ready_replicas = st.get("replicas") or 0, st.get("readyReplicas") or 0
            if replicas == 0:
                ready = ("False", "IstiodNotReady", "istiod Deployment is scaled to zero replicas")
            elif ready_replicas < replicas:
                ready = ("False", "IstiodNotReady", "not all istiod pods are ready")
            else:
                ready = ("True", "", "")
        state = ready[1] if ready[0] != "True" else "Healthy"
        if revision is not None:
            rev_status = copy.deepcopy(revision.get("status") or {})
            rconds = rev_status.setdefault("conditions", [])
            _set(rconds, "Reconciled", "True")
            _set(rconds, "Ready", *ready)
            _set(rconds, "DependenciesHealthy", "True")
            _set(
                rconds,
                "InUse",
                "False",
                "NotReferencedByAnything",
                "Not referenced by any pod or namespace",
            )
            rev_status.update(
                state=state, observedGeneration=revision["metadata"].get("generation", 1)
            )
            self._write_status(revision, rev_status)
        status = copy.deepcopy(istio.get("status") or {})
        conds = status.setdefault("conditions", [])
        _set(conds, "Reconciled", "True")
        _set(conds, "Ready", *ready)
        _set(conds, "DependenciesHealthy", "True")
        status.update(
            state=state,
            activeRevisionName=name,
            revisions={"total": 1, "ready": 1 if ready[0] == "True" else 0, "inUse": 0},
            observedGeneration=istio["metadata"].get("generation", 1),
        )
        self._write_status(istio, status)
        if ready[0] == "True":
            self._gateway_class()

    def _gateway_class(self) -> None:
        if not self.store.is_known(GATEWAY_API, "GatewayClass"):
            return
        if self.store.get(GATEWAY_API, "GatewayClass", "istio") is None:
            self.store.create(
                {
                    "apiVersion": GATEWAY_API,
                    "kind": "GatewayClass",
                    "metadata": {"name": "istio"},
                    "spec": {
                        "controllerName": "istio.io/gateway-controller",
                        "description": "The default Istio GatewayClass",
                    },
                }
            )


OPERATOR_DEPLOYMENTS = frozenset(OPERATOR_DEPLOYMENT.values())


def _progressing(deploy: Obj) -> str:
    """library-go deploymentcontroller isProgressing(): its message, or '' when not."""
    spec, st = deploy.get("spec") or {}, deploy.get("status") or {}
    expected = spec.get("replicas", 1)
    if deploy["metadata"].get("generation", 1) != st.get("observedGeneration"):
        return "Waiting for Deployment to act on changes"
    if (st.get("unavailableReplicas") or 0) > 0:
        return "Waiting for Deployment to deploy pods"
    if (st.get("updatedReplicas") or 0) < expected:
        return "Waiting for Deployment to update pods"
    if (st.get("availableReplicas") or 0) < expected:
        return "Waiting for Deployment to deploy pods"
    return ""
