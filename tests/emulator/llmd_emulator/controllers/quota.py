"""kube-controller-manager's resource quota controller: status.hard and status.used of each
ResourceQuota from the namespace's pods (k8s.io/kubernetes
pkg/controller/resourcequota/resource_quota_controller.go syncResourceQuota; usage as
llmd_emulator.k8s.quota computes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..k8s.quota import namespace_usage, quota_status
from .base import Controller, Key, Obj, key_of

if TYPE_CHECKING:
    from ..core import Emulator


class ResourceQuotas:
    def __init__(self, emu: Emulator) -> None:
        self.store = emu.store
        self.controller = Controller(emu, "resourcequota", self.reconcile)
        self.controller.watch("v1", "ResourceQuota")
        self.controller.watch("v1", "Pod", self._quotas_of)

    def _quotas_of(self, _event: str, pod: Obj) -> list[Key]:
        namespace = pod["metadata"].get("namespace")
        return [key_of(q) for q in self.store.list("v1", "ResourceQuota", namespace)]

    def reconcile(self, key: Key) -> None:
        quota = self.store.get("v1", "ResourceQuota", key[1], key[0])
        if quota is None:
            return
        status = quota_status(quota, namespace_usage(self.store, key[0]))
        if quota.get("status") != status:
            quota["status"] = status
            self.store.update_status(quota)
