"""Resource kinds served by the emulated API server: builtin table and CRD-derived kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class KindInfo:
    """One resource as discovery shows it (group, versions, names, scope, subresources)."""

    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    verbs: tuple[str, ...] = ALL_VERBS
    builtin: bool = True
    schemas: dict[str, Any] = field(default_factory=dict, compare=False)  # version -> schema
    scale_paths: dict[str, str] = field(default_factory=dict, compare=False)
    # version -> the CRD's additionalPrinterColumns (custom resources only)
    printer_columns: dict[str, tuple[dict[str, Any], ...]] = field(
        default_factory=dict, compare=False
    )

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version


def _k(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    categories: tuple[str, ...] = (),
) -> KindInfo:
    return KindInfo(
        group=group,
        versions=(version,),
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=sub,
        verbs=verbs,
    )


_ALL = ("all",)
_CREATE_ONLY = ("create",)
_DEPLOY_SCALE = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}

BUILTIN_KINDS: tuple[KindInfo, ...] = (
    _k("", "v1", "Namespace", "namespaces", namespaced=False, short=("ns",), sub=("status",)),
    _k("", "v1", "Pod", "pods", short=("po",), sub=("status", "log"), categories=_ALL),
    _k("", "v1", "Service", "services", short=("svc",), sub=("status",), categories=_ALL),
    _k("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _k("", "v1", "Secret", "secrets"),
    _k("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _k("", "v1", "Event", "events", short=("ev",)),
    _k("", "v1", "Node", "nodes", namespaced=False, short=("no",), sub=("status",)),
    _k("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _k("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), sub=("status",)),
    _k(
        "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=("status",)
    ),
    _k(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        namespaced=False,
        short=("pv",),
        sub=("status",),
    ),
    _k("events.k8s.io", "v1", "Event", "events", short=("ev",)),
    _k("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _k(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        sub=("status", "scale"),
        categories=_ALL,
    ),
    _k(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        sub=("status", "scale"),
        categories=_ALL,
    ),
    _k(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        sub=("status", "scale"),
        categories=_ALL,
    ),
    _k("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), sub=("status",), categories=_ALL),
    _k("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _k("batch", "v1", "Job", "jobs", short=(), sub=("status",), categories=_ALL),
    _k("batch", "v1", "CronJob", "cronjobs", short=("cj",), sub=("status",), categories=_ALL),
    _k(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        sub=("status",),
    ),
    _k("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    _k("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), sub=("status",)),
    _k("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _k("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _k("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    _k(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short=("crd", "crds"),
        sub=("status",),
    ),
    _k(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        namespaced=False,
    ),
    _k(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        namespaced=False,
    ),
    _k("coordination.k8s.io", "v1", "Lease", "leases"),
    _k(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short=("pdb",),
        sub=("status",),
    ),
    _k(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        namespaced=False,
        short=("pc",),
    ),
    _k("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=("sc",)),
    _k(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=_CREATE_ONLY,
    ),
    _k(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        namespaced=False,
        verbs=_CREATE_ONLY,
    ),
    _k(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        namespaced=False,
        verbs=_CREATE_ONLY,
    ),
)

# The builtin kinds whose REST strategy sets metadata.generation (PrepareForCreate sets 1,
# PrepareForUpdate adds 1 when the spec changes), in kube-apiserver v1.33
# (pkg/registry/*/strategy.go).
# Every other builtin kind has none; custom resources always have one (apiextensions-apiserver
# customResourceStrategy).
GENERATION_KINDS = frozenset(
    {
        ("", "Pod"),  # KEP-5067, v1.33: set unconditionally, status.observedGeneration is gated
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "Ingress"),
        ("policy", "PodDisruptionBudget"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
)


def has_generation(info: KindInfo) -> bool:
    """Does kube-apiserver keep metadata.generation for this kind?"""
    return not info.builtin or (info.group, info.kind) in GENERATION_KINDS


# Kinds that are answered but never stored (reviews).
VIRTUAL_KINDS = frozenset({"SelfSubjectAccessReview", "SelfSubjectRulesReview", "TokenReview"})

SCALE_PATHS = {
    "Deployment": _DEPLOY_SCALE,
    "ReplicaSet": _DEPLOY_SCALE,
    "StatefulSet": _DEPLOY_SCALE,
}


def kinds_from_crd(crd: dict[str, Any]) -> KindInfo:
    """The KindInfo a CustomResourceDefinition declares (served versions only, storage first)."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    served.sort(key=lambda v: not v.get("storage", False))
    subresources: list[str] = []
    scale_paths: dict[str, str] = {}
    for version in served:
        subs = version.get("subresources") or {}
        if "status" in subs and "status" not in subresources:
            subresources.append("status")
        if "scale" in subs and "scale" not in subresources:
            subresources.append("scale")
            scale_paths = dict(subs["scale"])
    return KindInfo(
        group=spec["group"],
        versions=tuple(v["name"] for v in served),
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=tuple(subresources),
        builtin=False,
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in served},
        scale_paths=scale_paths,
        printer_columns={v["name"]: tuple(v.get("additionalPrinterColumns") or ()) for v in served},
    )
