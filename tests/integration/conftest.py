"""Run the real ansible-playbook against this checkout with an isolated environment."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Variables from the user's shell that would change what preflight finds.
AMBIENT = (
    "GCP_PROJECT",
    "GCP_AUTH_KIND",
    "GCP_SERVICE_ACCOUNT_FILE",
    "GCP_ACCESS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "HF_TOKEN",
    "REGISTRY_AUTH_FILE",
    "XDG_CONFIG_HOME",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDQUOTAS",
    "LLMD_GKE_PROGRESS_INTERVAL",
    "ANSIBLE_CONFIG",
    "ANSIBLE_INVENTORY",
)


def as_printed(path: Path) -> str:
    """A path as the sandbox summary prints it: relative to the repository root when under it
    (make's .venv of a clone), else absolute."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# The phases of site.yml as the sandbox summary names them (their tags), in order.
PHASES = [
    "preflight",
    "cluster",
    "tpu",
    "operators",
    "kserve",
    "gateway",
    "tpu (ready)",
    "model",
    "netpol",
    "verify",
    "bench",
]


@dataclass
class Run:
    rc: int
    output: str

    def __contains__(self, text: str) -> bool:
        # Ansible folds long YAML lines: compare with whitespace normalised.
        return " ".join(text.split()) in " ".join(self.output.split())


# The test files longest first (their measured wall time in `make integration`, seconds): pytest-
# xdist hands out whole files (--dist loadfile) in collection order to the worker that is free,
# so the last ones handed out are the shortest, and neither worker runs long alone at the end.
LONGEST_FIRST = (
    "test_sandbox.py",  # 320
    "test_molecule.py",  # 85
    "test_kserve.py",  # 80
    "test_gke_phases.py",  # 75
    "test_gke_tpu_nodepool.py",  # 70
    "test_llmisvc_wait.py",  # 68
    "test_gke_cluster_playbook.py",  # 68
    "test_verify_bench.py",  # 65
    "test_preflight.py",  # 64
    "test_operators.py",  # 58
    "test_gateway_phase.py",  # 44
    "test_gke_kubeconfig_playbook.py",  # 38
    "test_gateway_ip.py",  # 35
    "test_netpol.py",  # 28
    "test_model_render.py",  # 23
    "test_sandbox_script.py",  # 15
    "test_collection_build.py",  # 13
    "test_kubeconfig_check.py",  # 7
    "test_upstream_inputs.py",  # 1
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside a file is kept


@pytest.fixture
def short_tmp():
    """A private directory with a short path, for $TMPDIR.

    ansible-core 2.21 opens a Unix socket below $TMPDIR (its local RPC server); a socket path
    longer than about 107 bytes cannot be bound and ansible-playbook stops with "Local RPC server
    did not start". pytest's tmp_path (longer still under xdist) comes close to that.
    """
    path = Path(tempfile.mkdtemp(prefix="llmd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ansible_env(tmp_path, short_tmp):
    """An environment with no ambient credentials and private Ansible/TMP directories."""
    return isolated_env(tmp_path, short_tmp)


def isolated_env(tmp_path: Path, short_tmp: Path) -> dict:
    """ansible_env's environment on directories of the caller's (a module fixture's)."""
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    env.update(
        HOME=str(home),
        TMPDIR=str(short_tmp),
        CLOUDSDK_CONFIG=str(home / "gcloud"),
        NO_GCE_CHECK="True",  # google-auth must not probe a metadata server from tests
        ANSIBLE_HOME=str(tmp_path / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def playbook_command(ansible_env: dict, *args: str, env: dict | None = None):
    """The command line and environment of ansible-playbook with args (run from ROOT)."""
    return [str(VENV_BIN / "ansible-playbook"), *args], {**ansible_env, **(env or {})}


@pytest.fixture
def playbook(ansible_env):
    """playbook(*args, env=None) runs ansible-playbook in the checkout and returns a Run."""

    def run(*args: str, env: dict | None = None, timeout: int = 300) -> Run:
        command, full_env = playbook_command(ansible_env, *args, env=env)
        proc = subprocess.run(
            command,
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout + proc.stderr)

    return run


sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests" / "tools"))
import upstream  # noqa: E402

from llmd_emulator.testing import running_emulator  # noqa: E402


@pytest.fixture(scope="session")
def upstream_inputs() -> dict:
    """The real pinned upstream inputs (tests/tools/upstream.py: $LLMD_UPSTREAM_DIR, else
    ../shared/upstream, else fetched at the pinned commits): paths()."""
    return upstream.paths()


@pytest.fixture(scope="session")
def upstream_vars(upstream_inputs) -> dict:
    """The roles' local-source settings (kserve_source_path, operators_chart_paths,
    operators_gateway_api_crds, operators_inference_extension_crds) on the pinned inputs."""
    return upstream.ansible_vars()


@pytest.fixture(scope="module")
def sandbox_emulator(tmp_path_factory):
    """A background emulator shared by one test module (compressed time)."""
    with running_emulator(tmp_path_factory.mktemp("emulator"), time_scale=0.01) as endpoints:
        # The emulated cluster-autoscaler removes an idle Node after AUTOSCALE_DOWN emulated
        # seconds (6 s here): keep Nodes while a test compares the state of two runs.
        endpoints.admin_post("/config", {"gke": {"durations": {"AUTOSCALE_DOWN": 10**7}}})
        # The gateway phase publishes http://<address>:<llmd_gateway_port>: the emulated Istio
        # binds that very port (a free one per module, see sandbox_gateway_port).
        endpoints.admin_post("/config", {"gateway": {"bind_exact_ports": True}})
        yield endpoints


@pytest.fixture
def scenario(emulator):
    """scenario(name) turns an emulator scenario on for one test (the module's `emulator`)."""
    added = []

    def add(name: str) -> None:
        emulator.admin_post("/scenario", {"add": [name]})
        added.append(name)

    yield add
    if added:
        emulator.admin_post("/scenario", {"remove": added})


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a listener the emulator binds exactly)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sandbox_gateway_port():
    return free_port()


@pytest.fixture
def sandbox_args(sandbox_emulator, sandbox_gateway_port, upstream_vars):
    """The ansible-playbook arguments that point a run at the module's emulator: inventory
    inventories/sandbox and its GKE endpoints, token, kubeconfig path and gateway port as extra
    vars."""
    endpoints = json.dumps(
        {
            "llmd_gke_api_endpoint": sandbox_emulator.gke_url,
            "llmd_compute_api_endpoint": sandbox_emulator.gke_url + "/compute/",
            "llmd_quotas_api_endpoint": sandbox_emulator.gke_url + "/cloudquotas/",
            # The emulated GKE takes any token; its Kubernetes API only its own, which
            # stands for the Google access token a real cluster accepts.
            "llmd_gcp_access_token": sandbox_emulator.token,
            # Written by the cluster phase (not the emulator's own kubeconfig).
            "llmd_kubeconfig": str(Path(sandbox_emulator.state_dir) / "llmd-kubeconfig.yaml"),
            "llmd_gateway_port": sandbox_gateway_port,
            # The real pinned charts, CRD manifests and KServe tree (tests/tools/upstream.py).
            **upstream_vars,
        }
    )
    return ["-i", "inventories/sandbox", "-e", endpoints]


@pytest.fixture
def sandbox_playbook(playbook, sandbox_args):
    """sandbox_playbook(book, *args) runs a playbook on inventories/sandbox against the module's
    emulator (sandbox_args)."""

    def run(book: str, *args: str, env: dict | None = None, timeout: int = 900) -> Run:
        return playbook(book, *sandbox_args, *args, env=env, timeout=timeout)

    return run


@pytest.fixture
def site_command(ansible_env, sandbox_args):
    """site_command(*args, env=None) -> (command, env): what site(*args) runs, for a test that
    starts it itself (subprocess.Popen with cwd=ROOT) to watch or kill it."""

    def build(*args: str, env: dict | None = None):
        return playbook_command(ansible_env, "site.yml", *sandbox_args, *args, env=env)

    return build


@pytest.fixture
def site(sandbox_playbook):
    """site(*args) runs site.yml on inventories/sandbox against the module's emulator."""

    def run(*args: str, env: dict | None = None) -> Run:
        return sandbox_playbook("site.yml", *args, env=env)

    return run


def tasks_runner(playbook, tmp_path: Path, *, name: str = "tasks", env=None, module_defaults=None):
    """execute(tasks, *ansible_args) -> (Run, [registered results]): one play on localhost.

    Every task is registered and ignores errors; a last task writes their results to JSON, so a
    test asserts on what each module returned rather than on the printed output.
    """

    def execute(tasks: list[dict], *args: str):
        results = tmp_path / "results.json"
        results.unlink(missing_ok=True)
        named = [dict(task, register=f"r{i}", ignore_errors=True) for i, task in enumerate(tasks)]
        everything = "{{ [" + ", ".join(f"r{i}" for i in range(len(tasks))) + "] | to_json }}"
        named.append(
            {
                "name": "Save the results",
                "ansible.builtin.copy": {"content": everything, "dest": str(results)},
                "check_mode": False,
                "changed_when": False,
            }
        )
        play = {
            "name": name,
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            **({"module_defaults": module_defaults} if module_defaults else {}),
            "tasks": named,
        }
        book = tmp_path / "play.yml"
        book.write_text(yaml.safe_dump([play], sort_keys=False))
        outcome = playbook(str(book), "-i", "localhost,", *args, env=env)
        assert results.exists(), outcome.output
        return outcome, json.loads(results.read_text())

    return execute


def kubectl(endpoints, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run the real kubectl against an emulator; its stdout (asserts success when check)."""
    proc = subprocess.run(
        [str(VENV_BIN / "kubectl"), "--kubeconfig", endpoints.kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def apply(endpoints, *objects: dict) -> None:
    """kubectl apply of objects to an emulator."""
    kubectl(endpoints, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def changed_tasks(run: Run) -> list[str]:
    """Names of the tasks that reported changed, in order (from the default callback's output)."""
    changed, task = [], None
    for line in run.output.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK [") : line.rindex("]")]
        elif line.startswith("changed: [") and task is not None:
            changed.append(task)
    return changed


def recap(run: Run) -> dict[str, int]:
    """The localhost PLAY RECAP counters of a run."""
    line = [x for x in run.output.splitlines() if x.startswith("localhost ") and "ok=" in x][-1]
    return {k: int(v) for k, v in (pair.split("=") for pair in line.split(":", 1)[1].split())}
