"""Build the collection docsite (make docs): antsibull-docs renders, Sphinx writes the HTML.

The usual antsibull-docs way: ``antsibull-docs sphinx-init --use-current`` writes a Sphinx
project for the collection found on ANSIBLE_COLLECTIONS_PATH (the Makefile's
``build/ansible_collections/llmd/gke`` copy), ``antsibull-docs collection`` renders the module,
role, filter and guide pages (docs/docsite) into it, and ``sphinx-build -W`` writes the HTML.

The conformance ledger stays Markdown at docs/conformance.md (next to the code it describes): the
build appends it, parsed by MyST, to the generated conformance guide page, so the docsite carries
it whole (the source tree's page, which antsibull-docs lints, holds only the introduction).

One change to the generated Sphinx configuration: this project's machines reach no web site but
package registries, so the intersphinx inventories of docs.python.org and docs.ansible.com cannot
be read. The pages antsibull-docs generates refer to a few labels of the Ansible documentation
(``common_return_values`` and so on); those are resolved to their pages on docs.ansible.com
here, and any other unresolved reference still fails the build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
# Labels of the Ansible documentation that antsibull-docs' generated pages refer to.
ANSIBLE_LABELS = {
    "common_return_values": "reference_appendices/common_return_values.html",
    "action_plugins": "plugins/action.html",
    "ansible_configuration_settings": "reference_appendices/config.html",
}

CONF_TAIL = f"""

# --- added by tests/tools/build_docs.py -------------------------------------------------------
# No intersphinx downloads (no web access on the build machines); the labels of the Ansible
# documentation that generated pages use are resolved to docs.ansible.com instead.
intersphinx_mapping = {{}}
# The conformance ledger (docs/conformance.md) is Markdown, included by the conformance page.
extensions = [*extensions, "myst_parser"]
_ANSIBLE_DOCS = {ANSIBLE_DOCS!r}
_ANSIBLE_LABELS = {ANSIBLE_LABELS!r}


def _ansible_label(app, env, node, contnode):
    from docutils import nodes

    target = node.get("reftarget")
    if node.get("refdomain") != "std" or target not in _ANSIBLE_LABELS:
        return None
    ref = nodes.reference("", "", internal=False, refuri=_ANSIBLE_DOCS + _ANSIBLE_LABELS[target])
    ref += contnode if node.get("refexplicit") else nodes.Text(target.replace("_", " "))
    return ref


def setup(app):
    app.connect("missing-reference", _ansible_label)
"""


LEDGER = "docs/conformance.md"
# Outside Sphinx's source suffixes (.rst, and .md once MyST is on): only the include reads it.
LEDGER_COPY = "conformance-ledger.mdinc"


def include_ledger(collection: Path, rst: Path) -> None:
    """Append docs/conformance.md, parsed as Markdown, to the generated conformance page."""
    page = rst / "collections" / "llmd" / "gke" / "docsite" / "conformance.rst"
    if not page.is_file():
        raise SystemExit(f"{page} was not generated: is conformance in extra-docs.yml?")
    shutil.copyfile(collection / LEDGER, page.parent / LEDGER_COPY)
    with page.open("a", encoding="utf-8") as out:
        out.write(f"\n\n.. include:: {LEDGER_COPY}\n   :parser: myst_parser.sphinx_\n")


def run(args: list[str], cwd: Path, env: dict) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    start = time.monotonic()
    subprocess.run([str(a) for a in args], cwd=cwd, env=env, check=True)
    print(f"  ({time.monotonic() - start:.1f} s)", flush=True)


def build(collections_path: Path, work: Path, dest: Path) -> int:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path.resolve()))
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run(
        [
            "antsibull-docs",
            "sphinx-init",
            "--use-current",
            "--fail-on-error",
            "--dest-dir",
            work,
            "--project",
            "llmd.gke",
            "--copyright",
            "llmd.gke contributors",
            "--title",
            "llmd.gke collection documentation",
            "--html-short-title",
            "llmd.gke",
            "llmd.gke",
        ],
        work,
        env,
    )
    with (work / "conf.py").open("a", encoding="utf-8") as conf:
        conf.write(CONF_TAIL)
    rst = work / "rst"
    rst.chmod(0o755)  # antsibull-docs wants it writable by itself only
    run(
        [
            "antsibull-docs",
            "--config-file",
            work / "antsibull-docs.cfg",
            "collection",
            "--use-current",
            "--fail-on-error",
            "--cleanup",
            "everything",
            "--dest-dir",
            rst,
            "llmd.gke",
        ],
        work,
        env,
    )
    include_ledger(collections_path / "ansible_collections" / "llmd" / "gke", rst)
    shutil.rmtree(dest, ignore_errors=True)
    run(
        [bindir / "sphinx-build", "-b", "html", "-W", "--keep-going", "-q", "-c", work, rst, dest],
        work,
        env,
    )
    return len(list(dest.rglob("*.html")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--collections-path",
        type=Path,
        default=ROOT / "build",
        help="directory holding ansible_collections/llmd/gke (default: build)",
    )
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "docsite")
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "docs")
    args = parser.parse_args()
    tree = args.collections_path / "ansible_collections" / "llmd" / "gke"
    if not (tree / "galaxy.yml").is_file():
        parser.error(f"{args.collections_path}/ansible_collections/llmd/gke is not a collection")
    start = time.monotonic()
    # Absolute paths: antsibull-docs and sphinx-build run with the work directory as cwd.
    pages = build(args.collections_path.resolve(), args.work_dir.resolve(), args.dest.resolve())
    print(f"docsite: {pages} pages in {args.dest} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
