# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs llmd.gke.llmisvc_wait in slices and prints the stage between them.

A module cannot print while it runs, and a vLLM start on TPUs takes 12-15 minutes. This action
calls the module with ``progress_interval`` (25 s; the environment variable
``LLMD_LLMISVC_PROGRESS_INTERVAL``, a positive number of seconds read on the controller, replaces
it, for tests) and what is left of ``timeout``: the module returns ``pending: true`` when its
slice ends before Ready, this plugin prints ``LLMInferenceService ns/name: <stage>, N s elapsed``
and calls it again, until Ready, a failure or the overall timeout, measured here on the monotonic
clock. The module derives its timeline from the cluster's objects on every call, so nothing has
to be carried between slices. ``progress_interval: 0`` runs the module once.
"""

from __future__ import annotations

import math
import os
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

PROGRESS_INTERVAL = 25
PROGRESS_INTERVAL_ENV = "LLMD_LLMISVC_PROGRESS_INTERVAL"
DEFAULT_TIMEOUT = 1200
DEFAULT_NAMESPACE = "llm-d-inference-scheduling"


def progress_interval(configured) -> int:
    """$LLMD_LLMISVC_PROGRESS_INTERVAL when it is a positive number, else the task's value."""
    try:
        value = int(float(os.environ.get(PROGRESS_INTERVAL_ENV, "")))
    except ValueError:
        value = 0
    if value > 0:
        return value
    return int(configured)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        name = getattr(self._task, "resolved_action", None) or self._task.action
        try:
            timeout = int(args.get("timeout", DEFAULT_TIMEOUT))
            interval = progress_interval(args.get("progress_interval", PROGRESS_INTERVAL))
        except (TypeError, ValueError) as exc:
            result.update(failed=True, msg=f"timeout and progress_interval must be integers: {exc}")
            return result
        what = (
            f"LLMInferenceService {args.get('namespace') or DEFAULT_NAMESPACE}/{args.get('name')}"
        )
        if interval <= 0 or timeout <= 0:
            result.update(self._execute_module(name, module_args=args, task_vars=task_vars))
            result["wait_calls"] = 1
            return result

        start = time.monotonic()
        calls = 0
        while True:
            remaining = max(0, math.ceil(timeout - (time.monotonic() - start)))
            call = dict(args, progress_interval=interval, timeout=remaining)
            answer = self._execute_module(name, module_args=call, task_vars=task_vars)
            calls += 1
            if answer.get("failed") or not answer.get("pending"):
                break
            display.display(
                f"  {what}: {answer.get('stage') or 'waiting'}, "
                f"{time.monotonic() - start:.0f} s elapsed (timeout {timeout} s)"
            )
        result.update(answer)
        total = time.monotonic() - start
        result["elapsed"] = round(total, 1)
        result["wait_calls"] = calls
        if answer.get("failed") and calls > 1 and "is not Ready after" in str(answer.get("msg")):
            result["msg"] = str(answer["msg"]).replace(
                f"is not Ready after {remaining} s", f"is not Ready after {total:.0f} s", 1
            )
        return result
