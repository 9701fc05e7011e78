"""The command line: background start/stop, state directory files, admin API."""

from __future__ import annotations

import base64
import json
import urllib.error
from pathlib import Path

import pytest
import requests
import yaml

from llmd_emulator.cli import process_alive
from llmd_emulator.testing import cli, running_emulator


def test_start_writes_state_dir_and_stop_ends_process(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"gke": {"durations": {"OPERATION_TYPE": 5}}, "x": {"a": 1}}))
    state = tmp_path / "state"
    with running_emulator(
        state, time_scale=0.05, scenario=["gateway-no-address"], config=config
    ) as emu:
        endpoints = json.loads((state / "endpoints.json").read_text())
        assert set(endpoints) >= {
            "k8s_url",
            "gke_url",
            "admin_url",
            "ca_file",
            "token",
            "kubeconfig",
            "pid",
            "log_file",
            "time_scale",
        }
        assert endpoints["time_scale"] == 0.05
        assert int((state / "emulator.pid").read_text()) == emu.pid
        kubeconfig = yaml.safe_load((state / "kubeconfig").read_text())
        cluster = kubeconfig["clusters"][0]["cluster"]
        assert cluster["server"] == emu.k8s_url
        assert (
            base64.b64decode(cluster["certificate-authority-data"])
            == (state / "ca.crt").read_bytes()
        )
        assert kubeconfig["users"][0]["user"]["token"] == emu.token
        api = requests.get(
            emu.k8s_url + "/api/v1/namespaces",
            headers={"Authorization": f"Bearer {emu.token}"},
            verify=emu.ca_file,
            timeout=10,
        )
        assert {n["metadata"]["name"] for n in api.json()["items"]} >= {"default", "kube-system"}

        again = cli("start", "--state-dir", str(state))
        assert again.returncode == 1 and "already running" in again.stderr

        state_dump = emu.state()
        assert state_dump["scenario"] == ["gateway-no-address"]
        assert state_dump["config"]["x"] == {"a": 1}
        assert emu.admin_get("/healthz") == {"status": "ok"}
        scenario = emu.admin_post(
            "/scenario", {"add": ["oom-killed"], "remove": ["gateway-no-address"]}
        )
        assert scenario == {"scenario": ["oom-killed"]}
        with pytest.raises(urllib.error.HTTPError) as unknown:
            emu.admin_post("/scenario", {"add": ["no-such-scenario"]})
        assert unknown.value.code == 400
        merged = emu.admin_post("/config", {"x": {"b": 2}})
        assert merged["x"] == {"a": 1, "b": 2} and merged["gke"]["durations"]["OPERATION_TYPE"] == 5
        assert emu.admin_post("/time-scale", {"time_scale": 0.5}) == {"time_scale": 0.5}
    assert not (state / "emulator.pid").exists()
    assert not process_alive(endpoints["pid"])
    assert "stopped" in (state / "emulator.log").read_text()
    assert cli("stop", "--state-dir", str(state)).returncode == 0


def test_start_reports_a_failed_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not a mapping\n")
    result = cli("start", "--state-dir", str(tmp_path / "s"), "--config", str(bad))
    assert result.returncode == 1 and "exited" in result.stderr
