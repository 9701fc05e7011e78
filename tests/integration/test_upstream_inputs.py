"""tests/tools/upstream.py: the real pinned inputs the tests, molecule and `make sandbox` run on."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import upstream
import yaml


def test_the_inputs_are_the_ones_the_roles_pin(upstream_inputs, upstream_vars):
    pins = upstream.Pins.from_roles()
    kserve = upstream_inputs["kserve"]
    for overlay in ("config/overlays/odh-xks", "config/overlays/odh-test/cert-manager"):
        assert (kserve / overlay / "kustomization.yaml").is_file()
    assert upstream_inputs["llmisvc_crd"].is_file()
    for key, chart in upstream_inputs["charts"].items():
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        assert meta["name"], key
    directory = upstream.upstream_dir()
    if directory is not None:  # the files named after the roles' pins, as SHA256SUMS lists them
        listed = (directory / "SHA256SUMS").read_text()
        assert all(name in listed for name in pins.file_names().values())
    crds = list(yaml.safe_load_all(upstream_inputs["gateway_api"].read_text()))
    assert "httproutes.gateway.networking.k8s.io" in {
        d["metadata"]["name"] for d in crds if d and d["kind"] == "CustomResourceDefinition"
    }
    assert upstream_vars["kserve_source_path"] == str(kserve)
    assert set(upstream_vars["operators_chart_paths"]) == {"cert_manager", "sail", "lws"}


@pytest.fixture
def private_copy(tmp_path, monkeypatch):
    """A copy of the upstream directory as LLMD_UPSTREAM_DIR, with a private unpack cache."""
    source = upstream.upstream_dir()
    if source is None:
        pytest.skip("no upstream directory (the inputs were fetched)")
    copy = tmp_path / "upstream"
    shutil.copytree(source, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    monkeypatch.setenv(upstream.ENV, str(copy))
    monkeypatch.setattr(upstream, "CACHE", tmp_path / "cache")
    return copy


def test_an_altered_file_is_refused_naming_it(private_copy):
    name = upstream.Pins.from_roles().file_names()["sail"]
    with (private_copy / name).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(upstream.UpstreamError, match=f"{name} has SHA-256 .* the file was altered"):
        upstream.paths()


def test_racing_workers_unpack_once(private_copy):
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _i: upstream.paths()["charts"]["lws"], range(4)))
    assert len(set(found)) == 1
    assert (found[0] / "Chart.yaml").is_file()
    # Only the digest directories are left (no half-unpacked scratch directory).
    assert all(not p.name.startswith(".") for p in upstream.CACHE.iterdir())


def test_a_setting_that_is_not_a_directory_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(upstream.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(upstream.UpstreamError, match="is not a directory"):
        upstream.paths()
