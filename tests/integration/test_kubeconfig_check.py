"""Every phase on the cluster's Kubernetes API starts with roles/llmd kubeconfig_check: without
the kubeconfig the cluster phase writes, a real run fails saying what to run and check mode ends
the phase's play saying why (a directory is no kubeconfig either)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("book", ["playbooks/netpol.yml", "playbooks/verify.yml"])
def test_a_phase_without_a_kubeconfig(playbook, tmp_path, book) -> None:
    missing = tmp_path / "none" / "kubeconfig.yaml"
    args = (book, "-i", "inventories/sandbox", "-e", f"llmd_kubeconfig={missing}")
    real = playbook(*args)
    assert real.rc != 0, real.output
    assert f"No kubeconfig at {missing} (llmd_kubeconfig): the cluster phase writes it." in real
    assert "ansible-playbook site.yml --tags cluster first" in real

    checked = playbook(*args, "--check")
    assert checked.rc == 0, checked.output
    assert f"No kubeconfig at {missing} yet" in checked
    assert "Skipping this phase in check mode" in checked

    directory = playbook(book, "-i", "inventories/sandbox", "-e", f"llmd_kubeconfig={tmp_path}")
    assert directory.rc != 0 and f"No kubeconfig at {tmp_path} (llmd_kubeconfig)" in directory
