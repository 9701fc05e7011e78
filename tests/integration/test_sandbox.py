"""site.yml on the sandbox: converge, then the same again and --check change nothing."""

from __future__ import annotations

from conftest import recap


def snapshot(endpoints) -> dict[tuple, str]:
    """uid and resourceVersion of every stored object: any write changes one of them."""
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): (
            o["metadata"]["uid"],
            o["metadata"]["resourceVersion"],
        )
        for o in endpoints.state()["objects"]
    }


def test_converge_then_idempotent_then_check_mode_changes_nothing(site, sandbox_emulator):
    first = site()
    assert first.rc == 0, first.output
    assert recap(first)["failed"] == 0
    converged = snapshot(sandbox_emulator)

    second = site()
    assert second.rc == 0, second.output
    assert recap(second)["changed"] == 0, second.output
    assert snapshot(sandbox_emulator) == converged

    check = site("--check", "--diff")
    assert check.rc == 0, check.output
    assert recap(check)["changed"] == 0, check.output
    assert snapshot(sandbox_emulator) == converged
