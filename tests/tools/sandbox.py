"""`make sandbox`: the deployment end to end against the emulator, then a short summary.

    sandbox.py [--results DIR] [--time-scale S] [--keep] [--] [ANSIBLE-PLAYBOOK ARGUMENTS...]
    sandbox.py --stop [--results DIR]

Starts the emulator (tests/emulator) in the background, runs site.yml with inventories/sandbox
and the emulator's endpoints (arguments this script does not know go to ansible-playbook as they
are; after `--`, every argument does), prints what was created, the time of each phase, the
gateway URL and where the results are, and stops the emulator whatever happened. With --keep the
emulator keeps running, detached, after the script returns: the summary says how to ask the model
(curl through the emulated gateway), how to reach the cluster (kubectl) and how to run more
playbooks against it; its pid and endpoints are in DIR/sandbox.json, and `--stop` (`make
sandbox-stop`) stops it. Exit status: that of ansible-playbook.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests" / "tools"))

import upstream  # noqa: E402
import yaml  # noqa: E402

from llmd_emulator.cli import process_alive  # noqa: E402
from llmd_emulator.testing import start_emulator, stop_emulator  # noqa: E402

# As in inventories/sandbox/group_vars/all/main.yml.
SANDBOX_PROJECT = "llmd-sandbox"
SANDBOX_ZONE = "europe-west4-a"
SANDBOX_TPU_POOL = "tpu-v6e-pool"
RECAP = re.compile(r"^localhost\s+:\s+(.*)$", re.MULTILINE)
PLAY = re.compile(r"^PLAY \[(.*)\] \*+\s*$")
STATE_FILE = "sandbox.json"
VARS_FILE = "sandbox-vars.json"
PROMPT = "Say hello to a newcomer to llm-d in one sentence."


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's options and the ansible-playbook arguments, in their order.

    Before `--`, the options this script knows are its own and every other argument goes to
    ansible-playbook (`--tags model -v`); after `--`, every argument goes to ansible-playbook.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        usage="%(prog)s [--results DIR] [--time-scale S] [--keep | --stop] [--] "
        "[ANSIBLE-PLAYBOOK ARGUMENTS...]",
        allow_abbrev=False,
    )
    parser.add_argument("--results", type=Path, default=ROOT / "sandbox-results")
    parser.add_argument("--time-scale", type=float, default=0.01)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--keep", action="store_true", help="leave the emulator running after site.yml"
    )
    mode.add_argument("--stop", action="store_true", help="stop a sandbox left running by --keep")
    if "--" in argv:
        cut = argv.index("--")
        own, passthrough = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    else:
        own, passthrough = parser.parse_known_args(argv)
    if own.stop and passthrough:
        parser.error("--stop takes no ansible-playbook arguments: " + " ".join(passthrough))
    return own, passthrough


def shown(path: Path | str) -> str:
    """A path as the summary prints it: relative to the repository root when under it (the
    commands it prints run from there), else absolute; never with `..` in it."""
    resolved = Path(os.path.abspath(path))
    try:
        return str(resolved.relative_to(ROOT))
    except ValueError:
        return str(resolved)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def phases() -> dict[str, str]:
    """Play name -> phase label, from site.yml: the phase's tag (the one `--tags` selects),
    with the rest of the playbook's name where one tag has two playbooks ("tpu (ready)")."""
    labels = {}
    for entry in yaml.safe_load((ROOT / "site.yml").read_text()):
        book = ROOT / entry["ansible.builtin.import_playbook"]
        for play in yaml.safe_load(book.read_text()):
            tags = play.get("tags") or []
            tag = ([tags] if isinstance(tags, str) else tags or [book.stem])[0]
            label = tag if book.stem == tag else f"{tag} ({book.stem.removeprefix(tag + '_')})"
            labels[play["name"]] = label
    return labels


def phase_times(marks: list[tuple[str, float]], end: float) -> list[tuple[str, float]]:
    """(phase, seconds) from the times the PLAY banners appeared and the time of the recap."""
    labels = phases()
    ends = [t for _name, t in marks[1:]] + [end] if marks else []
    return [
        (labels.get(name, name), stop - start)
        for (name, start), stop in zip(marks, ends, strict=True)
    ]


def sandbox_vars(endpoints, results: Path, gateway_port: int) -> dict:
    """The extra vars that point inventories/sandbox at this emulator."""
    return {
        "llmd_gke_api_endpoint": endpoints.gke_url,
        "llmd_compute_api_endpoint": endpoints.gke_url + "/compute/",
        "llmd_quotas_api_endpoint": endpoints.gke_url + "/cloudquotas/",
        # The emulated GKE takes any token; its Kubernetes API only its own, which
        # stands for the Google access token a real cluster accepts.
        "llmd_gcp_access_token": endpoints.token,
        "llmd_kubeconfig": str(results / "kubeconfig.yaml"),
        "tpu_timing_file": str(results / "tpu-timing.json"),
        "bench_results_root": str(results / "bench"),
        # The emulated Istio binds the Gateway's listener port itself on 127.0.0.1.
        "llmd_gateway_port": gateway_port,
        # The real pinned charts, CRD manifests and KServe tree (tests/tools/upstream.py:
        # $LLMD_UPSTREAM_DIR, ../shared/upstream, or fetched at the pinned commits).
        **upstream.ansible_vars(),
    }


@dataclass
class SiteRun:
    rc: int
    output: str
    seconds: float
    phases: list[tuple[str, float]]
    # CPU time of ansible-playbook and every process it ran (user + system): steadier than the
    # wall time on a machine other work shares.
    cpu_seconds: float = 0.0
    # (phase, CPU seconds of ansible-playbook and what it ran, of the emulator), from /proc.
    phase_cpu: list[tuple[str, float, float]] = field(default_factory=list)


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a running process and of its children it has waited for (Linux
    /proc; 0 where there is none): what ansible-playbook and its workers and modules used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return 0.0
    # After the command name: state is field 3 of proc(5); utime, stime, cutime, cstime 14-17.
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def phase_cpu(
    marks: list[tuple[str, float, float]], end: tuple[float, float]
) -> list[tuple[str, float, float]]:
    """(phase, CPU seconds of Ansible, of the emulator) from both CPU counters read at each PLAY
    banner and at the recap."""
    labels = phases()
    ends = [(a, e) for _name, a, e in marks[1:]] + [end] if marks else []
    return [
        (labels.get(name, name), a_stop - a_start, e_stop - e_start)
        for (name, a_start, e_start), (a_stop, e_stop) in zip(marks, ends, strict=True)
    ]


def run_site(
    extra_vars: dict, results: Path, extra_args: list[str], emulator_pid: int | None = None
) -> SiteRun:
    env = dict(os.environ)
    for var in (
        "GCP_PROJECT",
        "GCP_AUTH_KIND",
        "GCP_ACCESS_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        env.pop(var, None)
    # A short private $TMPDIR: ansible-core binds a Unix socket below it, and the results
    # directory may sit too deep for one (the path of a socket is limited to about 107 bytes).
    tmp = Path(tempfile.mkdtemp(prefix="llmd-sandbox-"))
    env.update(TMPDIR=str(tmp), ANSIBLE_NOCOLOR="1", NO_GCE_CHECK="True")
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "site.yml",
        "-i",
        "inventories/sandbox",
        "-e",
        json.dumps(extra_vars),
        *extra_args,
    ]
    started = time.monotonic()
    cpu_before = _children_cpu()
    lines = []
    # When each play started (its banner, printed as it starts): the time per phase.
    marks: list[tuple[str, float]] = []
    cpu_marks: list[tuple[str, float, float]] = []
    ended = None
    cpu_ended = None
    try:
        with subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            for line in proc.stdout:
                now = time.monotonic()
                sys.stdout.write(line)
                lines.append(line)
                if line.startswith("PLAY RECAP"):
                    ended = now
                    cpu_ended = (process_cpu(proc.pid), process_cpu(emulator_pid))
                elif match := PLAY.match(line):
                    marks.append((match.group(1), now))
                    cpu_marks.append(
                        (match.group(1), process_cpu(proc.pid), process_cpu(emulator_pid))
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.monotonic() - started
    output = "".join(lines)
    (results / "site.log").write_text(output)
    return SiteRun(
        proc.returncode,
        output,
        seconds,
        phase_times(marks, ended or started + seconds),
        _children_cpu() - cpu_before,
        phase_cpu(cpu_marks, cpu_ended) if cpu_ended else [],
    )


def _children_cpu() -> float:
    """User + system CPU seconds of this process's children that have ended (the emulator runs on
    until the summary: it is not counted)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def gke_clusters(endpoints, project: str, location: str) -> list[dict]:
    url = f"{endpoints.gke_url}/v1/projects/{project}/locations/{location}/clusters"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sandbox"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response).get("clusters", [])


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def tpu_pool_timing(endpoints, results: Path, pool: str) -> str | None:
    """How long the TPU pool's creation took and how much of it the run did not wait for.

    The create Operation's start and end come from the emulated GKE; the time site.yml spent
    blocked on it comes from the tpu role (tpu_timing_file): the rest ran alongside the phases
    between tpu.yml and tpu_ready.yml.
    """
    timing_file = results / "tpu-timing.json"
    if not timing_file.is_file():
        return None
    waited = float(json.loads(timing_file.read_text()).get("waited_seconds") or 0)
    url = f"{endpoints.gke_url}/v1/projects/{SANDBOX_PROJECT}/locations/{SANDBOX_ZONE}/operations"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sandbox"})
    with urllib.request.urlopen(request, timeout=30) as response:
        operations = json.load(response).get("operations", [])
    creates = [
        op
        for op in operations
        if op.get("operationType") == "CREATE_NODE_POOL"
        and op.get("targetLink", "").endswith("/nodePools/" + pool)
        and op.get("endTime")
    ]
    if not creates:
        return f"TPU pool {pool}: already there, nothing to create; waited {waited:.1f} s"
    took = (_when(creates[-1]["endTime"]) - _when(creates[-1]["startTime"])).total_seconds()
    saved = max(took - waited, 0.0)
    return (
        f"TPU pool {pool}: creation took {took:.1f} s, site.yml waited {waited:.1f} s for it; "
        f"{saved:.1f} s ({100 * saved / took if took else 0:.0f}%) ran alongside the phases "
        "between tpu and tpu_ready (emulated time is compressed by --time-scale)"
    )


def model_access(state: dict, output: str) -> list[dict]:
    """Each LLMInferenceService with the URL of its completions through its gateway: the URL
    the gateway phase reported (<gateway URL>/<namespace>/<name>), else the Gateway's status
    (as llmd.gke.gateway_ip reads it), and the name it is served under."""
    objects = state.get("objects", [])
    found = []
    for svc in (o for o in objects if o["kind"] == "LLMInferenceService"):
        meta = svc["metadata"]
        refs = ((svc.get("spec") or {}).get("router") or {}).get("gateway", {}).get("refs") or []
        ref = refs[0] if refs else {"name": "inference-gateway", "namespace": "opendatahub"}
        reported = re.findall(rf"Gateway {ref['namespace']}/{ref['name']}: (http://\S+)", output)
        base = reported[-1] if reported else gateway_url_of(objects, ref)
        if base:
            found.append(
                {
                    "url": f"{base}/{meta['namespace']}/{meta['name']}/v1/completions",
                    "model": (svc.get("spec") or {}).get("model", {}).get("name") or meta["name"],
                }
            )
    return found


def gateway_url_of(objects: list[dict], ref: dict) -> str | None:
    for gateway in objects:
        meta = gateway["metadata"]
        if gateway["kind"] != "Gateway" or (meta.get("namespace"), meta["name"]) != (
            ref.get("namespace"),
            ref["name"],
        ):
            continue
        addresses = (gateway.get("status") or {}).get("addresses") or []
        listeners = gateway.get("spec", {}).get("listeners") or [{}]
        if addresses:
            return f"http://{addresses[0]['value']}:{listeners[0].get('port', 80)}"
    return None


def curl_command(url: str, model: str) -> str:
    body = json.dumps({"model": model, "prompt": PROMPT, "max_tokens": 32})
    return f"curl -sS {shlex.quote(url)} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def kubectl_path() -> str:
    """kubectl of the venv (`make setup` installs the pinned one), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return shown(beside)
    return shutil.which("kubectl") or "kubectl"


def summarise(state: dict, clusters: list, site: SiteRun, results: Path) -> str:
    objects = state.get("objects", [])
    kinds = collections.Counter(o["kind"] for o in objects)
    recaps = RECAP.findall(site.output)
    recap = recaps[-1].strip() if recaps else "no recap"
    lines = ["", "== sandbox summary", f"site.yml: {recap} ({site.seconds:.0f} s)"]
    lines.append(f"CPU time of ansible-playbook and what it ran: {site.cpu_seconds:.0f} s")
    if site.phases:
        lines.append("Time per phase (tag: seconds):")
        width = max(len(label) for label, _s in site.phases)
        lines += [f"  {label:<{width}}  {seconds:6.1f}" for label, seconds in site.phases]
    if site.phase_cpu:
        # Each line ends in "s": the time table's readers stop at the first line without a number.
        lines.append(
            "CPU per phase (tag: seconds of ansible-playbook and what it ran + of the emulator):"
        )
        width = max(len(label) for label, _a, _e in site.phase_cpu)
        lines += [
            f"  {label:<{width}}  {ansible:6.1f} + {emulator:5.1f} s"
            for label, ansible, emulator in site.phase_cpu
        ]
    for cluster in clusters:
        pools = ", ".join(
            f"{p['name']} ({p.get('status')}, {p.get('initialNodeCount', '?')} nodes)"
            for p in cluster.get("nodePools", [])
        )
        lines.append(f"GKE cluster {cluster['name']}: {cluster.get('status')}; pools: {pools}")
    if state.get("tpu_timing"):
        lines.append(state["tpu_timing"])
    if kinds:
        lines.append(
            "Kubernetes objects: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        )
    for gateway in (o for o in objects if o["kind"] == "Gateway"):
        meta = gateway["metadata"]
        url = gateway_url_of(objects, {"name": meta["name"], "namespace": meta.get("namespace")})
        if url:
            lines.append(f"Gateway URL: {url}")
    lines.append(f"Results: {shown(results)} (site.log, state.json, emulator.log)")
    return "\n".join(lines)


def keep_summary(kept: dict) -> str:
    """What to do with a kept sandbox: every command runs as printed from the repository root."""
    lines = [
        "",
        f"== sandbox kept running: emulator pid {kept['pid']}, "
        f"state in {shown(kept['state_file'])}",
    ]
    # Each command on a line of its own, indented: it runs as printed from the repository root.
    for model in kept["models"]:
        lines += [f"Ask the model {model['model']} through the emulated gateway:"]
        lines += ["  " + model["curl"]]
    if not kept["models"]:
        lines.append("No model deployed yet (site.yml without the model phase): no curl to print.")
    if kept["kubectl"]:
        lines += ["Look at the cluster:", "  " + kept["kubectl"]]
    lines += [
        "Run more playbooks against it (scale, verify, diagnose, teardown):",
        "  " + kept["playbook"],
        "Stop it:",
        "  " + kept["stop"],
    ]
    return "\n".join(lines)


def keep(endpoints, results: Path, state: dict, output: str) -> dict:
    """Record the kept sandbox in results/sandbox.json and return what the summary prints."""
    kubeconfig = results / "kubeconfig.yaml"
    playbook = shlex.join(
        [
            shown(Path(sys.executable).parent / "ansible-playbook"),
            "playbooks/verify.yml",
            "-i",
            "inventories/sandbox",
            "-e",
            "@" + shown(results / VARS_FILE),
        ]
    )
    stop = "make sandbox-stop"
    venv = Path(sys.executable).parent.parent
    if venv != ROOT / ".venv":
        stop += " VENV=" + shlex.quote(shown(venv))
    if results != (ROOT / "sandbox-results").resolve():
        stop = shlex.join(
            [shown(sys.executable), shown(__file__), "--stop", "--results", shown(results)]
        )
    kept = {
        "pid": endpoints.pid,
        "state_file": str(results / STATE_FILE),
        "emulator_state_dir": str(endpoints.state_dir),
        "k8s_url": endpoints.k8s_url,
        "gke_url": endpoints.gke_url,
        "admin_url": endpoints.admin_url,
        "kubeconfig": str(kubeconfig) if kubeconfig.is_file() else None,
        "models": [
            {**m, "curl": curl_command(m["url"], m["model"])} for m in model_access(state, output)
        ],
        "kubectl": (
            f"KUBECONFIG={shlex.quote(shown(kubeconfig))} {shlex.quote(kubectl_path())} get pods -A"
            if kubeconfig.is_file()
            else None
        ),
        "playbook": playbook,
        "stop": stop,
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    (results / STATE_FILE).write_text(json.dumps(kept, indent=1))
    return kept


def stop_kept(results: Path) -> str:
    """Stop the sandbox kept in results (idempotent): what happened, in one sentence."""
    state_file = results / STATE_FILE
    emulator_dir = results / "emulator"
    try:
        pid = json.loads(state_file.read_text())["pid"]
    except (FileNotFoundError, ValueError, KeyError):
        pid = None
    running = pid is not None and process_alive(pid)
    if emulator_dir.is_dir():
        stop_emulator(emulator_dir)  # also one left without a state file
    state_file.unlink(missing_ok=True)
    if running:
        return f"Stopped the sandbox kept in {shown(results)} (emulator pid {pid})."
    return f"No sandbox is running (none kept in {shown(results)})."


def main(argv: list[str] | None = None) -> int:
    args, ansible_args = parse_args(sys.argv[1:] if argv is None else argv)
    results = args.results.resolve()
    if args.stop:
        print(stop_kept(results))
        return 0
    if (results / STATE_FILE).exists() or (results / "emulator").is_dir():
        message = stop_kept(results)
        if message.startswith("Stopped"):
            print(message + " A new one starts.")
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    endpoints = start_emulator(results / "emulator", time_scale=args.time_scale)
    kept = None
    try:
        endpoints.admin_post("/config", {"gateway": {"bind_exact_ports": True}})
        extra_vars = sandbox_vars(endpoints, results, free_port())
        (results / VARS_FILE).write_text(json.dumps(extra_vars, indent=1))
        site = run_site(extra_vars, results, ansible_args, endpoints.pid)
        state = endpoints.state()
        clusters = gke_clusters(endpoints, SANDBOX_PROJECT, SANDBOX_ZONE)
        state["gke_clusters"] = clusters
        state["tpu_timing"] = tpu_pool_timing(endpoints, results, SANDBOX_TPU_POOL)
        state["phase_seconds"] = dict(site.phases)
        (results / "state.json").write_text(json.dumps(state, indent=1))
        shutil.copyfile(endpoints.log_file, results / "emulator.log")
        if args.keep:
            kept = keep(endpoints, results, state, site.output)
    finally:
        if kept is None:
            stop_emulator(results / "emulator")
    print(summarise(state, clusters, site, results))
    if kept:
        print(keep_summary(kept))
    return site.rc


if __name__ == "__main__":
    sys.exit(main())
