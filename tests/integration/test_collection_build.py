"""The built tarball installs and works outside this checkout; ansible-doc documents each module."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, VENV_BIN

MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


def run(args, env, cwd):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_tarball_installs_and_runs_outside_the_checkout(ansible_env, tmp_path):
    rc, out = run(
        [VENV_BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, ROOT],
        ansible_env,
        tmp_path,
    )
    assert rc == 0, out
    tarball = next(tmp_path.glob("llmd-gke-*.tar.gz"))
    installed = tmp_path / "installed"
    rc, out = run(
        [
            VENV_BIN / "ansible-galaxy",
            "collection",
            "install",
            "--offline",
            "-p",
            installed,
            tarball,
        ],
        ansible_env,
        tmp_path,
    )
    assert rc == 0, out
    tree = installed / "ansible_collections" / "llmd" / "gke"
    assert (tree / "plugins" / "module_utils" / "tpu.py").is_file()
    assert (tree / "roles" / "preflight" / "tasks" / "main.yml").is_file()
    assert not (tree / "collections").exists(), "the checkout's symlink must not be packaged"

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "play.yml").write_text(
        "- name: Use the installed collection\n  hosts: localhost\n  gather_facts: false\n"
        "  tasks:\n    - name: Shape\n      llmd.gke.tpu_slice_info:\n"
        "        machine_type: ct6e-standard-4t\n        topology: 4x4\n        node_count: 4\n"
        "      register: shape\n    - name: Check\n      ansible.builtin.assert:\n"
        "        that: shape.slice.nodes_per_slice == 4 and shape.slice.api_tpu_topology == '4x4'\n"
    )
    env = {**ansible_env, "ANSIBLE_COLLECTIONS_PATH": str(installed)}
    rc, out = run(
        [
            VENV_BIN / "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "play.yml",
        ],
        env,
        outside,
    )
    assert rc == 0, out
    assert str(ROOT) not in out.replace(str(ROOT / ".venv"), "")


def test_ansible_doc_documents_every_module(ansible_env):
    assert MODULES, "no modules found"
    for module in MODULES:
        rc, out = run([VENV_BIN / "ansible-doc", f"llmd.gke.{module}"], ansible_env, ROOT)
        assert rc == 0, out
        assert "EXAMPLES:" in out and "RETURN VALUES:" in out, out
    rc, out = run([VENV_BIN / "ansible-doc", "-l", "llmd.gke"], ansible_env, ROOT)
    assert rc == 0, out
    for module in MODULES:
        assert f"llmd.gke.{module}" in out
