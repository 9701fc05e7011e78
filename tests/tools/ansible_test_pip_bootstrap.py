"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap its sanity venvs.

ansible-test fetches get-pip.py from ci-files.testing.ansible.com, which this project's machines
cannot reach (only PyPI is). It looks for a cached copy first, at
~/.ansible/test/cache/get_pip_<version>.py, so `make sanity` installs this file there. It does what
get-pip.py does with the same arguments: puts pip into the (empty) virtualenv with ensurepip,
then installs the requested packages (pip==<version> ...) from the package index.

Usage (by make): python ansible_test_pip_bootstrap.py --install   (writes the cache file)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

IGNORED = {"--no-setuptools", "--no-wheel"}


def pip_bootstrap_version() -> str:
    import ansible_test  # noqa: PLC0415 - only the installer needs it

    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = re.search(r"default_packages = dict\(\s*pip='([^']+)'", source.read_text())
    if not match:
        raise SystemExit(f"cannot find the pip version ansible-test bootstraps in {source}")
    return match.group(1)


def install() -> None:
    version = pip_bootstrap_version()
    cache = Path(os.path.expanduser("~/.ansible/test/cache"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"get_pip_{version.replace('.', '_')}.py"
    shutil.copyfile(__file__, target)
    print(f"ansible-test pip bootstrap for pip {version}: {target}")


def bootstrap(args: list[str]) -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True)
    pip_args = [arg for arg in args if arg not in IGNORED]
    return subprocess.call([sys.executable, "-m", "pip", "install", *pip_args])


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        install()
    else:
        sys.exit(bootstrap(sys.argv[1:]))
