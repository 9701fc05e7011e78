"""The real upstream inputs of the operators and kserve phases, for the tests and the sandbox.

The roles download their inputs at pinned commits and versions (roles/operators/defaults/main.yml,
roles/kserve/defaults/main.yml). Tests and `make sandbox` run the roles on the same files through
the roles' own local-source settings, found through one setting:

- `LLMD_UPSTREAM_DIR`, else `<checkout>/../shared/upstream` when it exists: a directory with the
  pinned files and their `SHA256SUMS` (see that directory's README). Every file is checked against
  its sum; the tarballs are unpacked once into `<checkout>/.cache/upstream/<sha256>/` (git-ignored;
  several pytest-xdist workers may race: each unpacks into a private directory and renames it).
- Without such a directory, the same pinned sources are fetched the way the roles fetch them (git
  at the pinned commit, the release URLs) into `<checkout>/.cache/upstream/fetched/`.

`python tests/tools/upstream.py` prints the Ansible variables as JSON (for `-e`); `vars()` returns
them; `paths()` returns the paths themselves (with the KServe LLMInferenceService CRD).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "upstream"
ENV = "LLMD_UPSTREAM_DIR"
CHARTS = ("cert_manager", "sail", "lws")
# The top-level folder of each chart's tarball (`git archive --prefix=<folder>/`).
CHART_FOLDERS = {
    "cert_manager": "cert-manager-operator-chart",
    "sail": "sail-operator-chart",
    "lws": "lws-operator-chart",
}
LLMISVC_CRD = "config/crd/full/serving.kserve.io_llminferenceservices.yaml"
# The ServiceMonitor CRD the LWS operator needs (roles/operators defaults): no pinned upstream
# copy here, so our own stand-in (tests/fixtures/servicemonitors-crd.yaml says why).
SERVICEMONITOR_CRD = ROOT / "tests" / "fixtures" / "servicemonitors-crd.yaml"


class UpstreamError(RuntimeError):
    """The upstream inputs are missing, altered or cannot be fetched (the message says which)."""


@dataclass(frozen=True)
class Pins:
    kserve_repo: str
    kserve_commit: str
    charts: dict[str, tuple[str, str]]  # key -> (git repo, commit)
    gateway_api_version: str
    inference_extension_version: str

    @classmethod
    def from_roles(cls) -> Pins:
        ops = yaml.safe_load((ROOT / "roles/operators/defaults/main.yml").read_text())
        kserve = yaml.safe_load((ROOT / "roles/kserve/defaults/main.yml").read_text())
        return cls(
            kserve_repo=kserve["kserve_git_repo"],
            kserve_commit=kserve["kserve_git_version"],
            charts={
                k: (ops["operators_charts"][k]["repo"], ops["operators_charts"][k]["version"])
                for k in CHARTS
            },
            gateway_api_version=ops["operators_gateway_api_version"],
            inference_extension_version=ops["operators_inference_extension_version"],
        )

    def file_names(self) -> dict[str, str]:
        """The name each input has in the upstream directory (see its README)."""
        names = {"kserve": f"kserve-{self.kserve_commit}-config.tar.gz"}
        for key, (_repo, commit) in self.charts.items():
            names[key] = f"{CHART_FOLDERS[key]}-{commit}.tar.gz"
        names["gateway_api"] = f"gateway-api-{self.gateway_api_version}-standard-install.yaml"
        names["inference_extension"] = (
            f"inference-extension-{self.inference_extension_version}-manifests.yaml"
        )
        return names

    def release_urls(self) -> dict[str, str]:
        """The URLs roles/operators/defaults/main.yml downloads the CRD manifests from."""
        return {
            "gateway_api": "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
            f"{self.gateway_api_version}/standard-install.yaml",
            "inference_extension": "https://github.com/kubernetes-sigs/"
            f"gateway-api-inference-extension/releases/download/{self.inference_extension_version}"
            "/manifests.yaml",
        }


def upstream_dir() -> Path | None:
    """The directory of the pinned inputs: $LLMD_UPSTREAM_DIR, else ../shared/upstream if any."""
    given = os.environ.get(ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_dir():
            raise UpstreamError(
                f"{ENV}={given} is not a directory: point it at the directory of the pinned "
                "upstream inputs (with their SHA256SUMS), or unset it to fetch them"
            )
        return path.resolve()
    default = ROOT.parent / "shared" / "upstream"
    return default.resolve() if default.is_dir() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sums(directory: Path) -> dict[str, str]:
    sums_file = directory / "SHA256SUMS"
    if not sums_file.is_file():
        raise UpstreamError(f"{sums_file} is missing: {directory} is not an upstream input dir")
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def _verified(directory: Path, name: str, sums: dict[str, str]) -> tuple[Path, str]:
    path = directory / name
    if name not in sums:
        raise UpstreamError(
            f"{name} is not listed in {directory}/SHA256SUMS: the roles pin a version that "
            f"directory does not hold (update it, or unset {ENV} to fetch the pinned sources)"
        )
    if not path.is_file():
        raise UpstreamError(f"{path} is missing (listed in SHA256SUMS)")
    actual = _sha256(path)
    if actual != sums[name]:
        raise UpstreamError(
            f"{path} has SHA-256 {actual}, SHA256SUMS says {sums[name]}: the file was altered; "
            "restore it from upstream"
        )
    return path, actual


def _unpacked(tarball: Path, digest: str, folder: str) -> Path:
    """The tarball unpacked once under CACHE/<digest>/ (atomic rename: safe for racing workers)."""
    target = CACHE / digest
    if not (target / folder).is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=CACHE))
        try:
            with tarfile.open(tarball) as archive:
                archive.extractall(scratch, filter="data")
            try:
                scratch.rename(target)
            except OSError:  # another worker got there first
                if not (target / folder).is_dir():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target / folder


def _from_dir(directory: Path, pins: Pins) -> dict:
    sums = _sums(directory)
    names = pins.file_names()
    files = {key: _verified(directory, name, sums) for key, name in names.items()}
    kserve = _unpacked(*files["kserve"], "kserve")
    charts = {k: _unpacked(*files[k], CHART_FOLDERS[k]) for k in CHARTS}
    return {
        "kserve": kserve,
        "charts": charts,
        "gateway_api": files["gateway_api"][0],
        "inference_extension": files["inference_extension"][0],
    }


def _git_at(repo: str, commit: str, dest: Path) -> Path:
    if (dest / ".git").is_dir():
        return dest
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for argv in (
            ["git", "init", "-q", str(scratch)],
            ["git", "-C", str(scratch), "fetch", "-q", "--depth", "1", repo, commit],
            ["git", "-C", str(scratch), "checkout", "-q", "FETCH_HEAD"],
        ):
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
            if proc.returncode:
                raise UpstreamError(
                    f"{' '.join(argv)} failed: {proc.stderr.strip()} (no upstream directory: "
                    f"set {ENV} to one, or allow access to {repo})"
                )
        try:
            scratch.rename(dest)
        except OSError:
            if not (dest / ".git").is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dest


def _download(url: str, dest: Path) -> Path:
    if dest.is_file():
        return dest
    handle, tmp = tempfile.mkstemp(prefix=f".{dest.name}-", dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=120) as resp:
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UpstreamError(f"downloading {url} failed: {exc} (set {ENV} to a local copy)") from exc
    return dest


def _fetched(pins: Pins) -> dict:
    base = CACHE / "fetched"
    base.mkdir(parents=True, exist_ok=True)
    kserve = _git_at(pins.kserve_repo, pins.kserve_commit, base / f"kserve-{pins.kserve_commit}")
    charts = {
        k: _git_at(repo, commit, base / f"{CHART_FOLDERS[k]}-{commit}")
        for k, (repo, commit) in pins.charts.items()
    }
    names = pins.file_names()
    urls = pins.release_urls()
    return {
        "kserve": kserve,
        "charts": charts,
        "gateway_api": _download(urls["gateway_api"], base / names["gateway_api"]),
        "inference_extension": _download(
            urls["inference_extension"], base / names["inference_extension"]
        ),
    }


def paths() -> dict:
    """kserve (source root), charts {cert_manager, sail, lws}, gateway_api, inference_extension
    (manifest files) and llmisvc_crd (the LLMInferenceService CRD of the KServe source)."""
    pins = Pins.from_roles()
    directory = upstream_dir()
    found = _from_dir(directory, pins) if directory else _fetched(pins)
    found["llmisvc_crd"] = found["kserve"] / LLMISVC_CRD
    return found


def ansible_vars() -> dict:
    """The roles' local-source settings pointing at the pinned inputs (extra vars)."""
    found = paths()
    return {
        "kserve_source_path": str(found["kserve"]),
        "operators_chart_paths": {k: str(v) for k, v in found["charts"].items()},
        "operators_gateway_api_crds": str(found["gateway_api"]),
        "operators_inference_extension_crds": str(found["inference_extension"]),
        # Not an input of ../shared/upstream: our own stand-in, said so in the file.
        "operators_servicemonitor_crd": str(SERVICEMONITOR_CRD),
    }


def main() -> int:
    try:
        print(json.dumps(ansible_vars()))
    except UpstreamError as exc:
        print(f"upstream inputs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
