# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin base for the GKE resource modules: shows progress during long waits.

A module cannot print while it runs, so a 10-minute TPU pool creation would be one silent task.
This action runs the module with ``progress_interval`` set: the module returns ``pending: true``
when the Operation still runs after that many seconds, this plugin prints the Operation's status
and the elapsed time, and calls the module again with the same arguments (the module picks up the
running Operation) until it is done, fails, or ``wait_timeout`` has passed in all.

``changed`` is true when any call changed something; the diff is the one of the call that
decided the change. Check mode and ``wait: false`` run the module once, as it is.

The interval is ``progress_interval`` (25 s). The environment variable
``LLMD_GKE_PROGRESS_INTERVAL`` (a positive number of seconds, read on the controller) replaces
it, for tests that need progress lines from short emulated Operations; an invalid value is
ignored.
"""

from __future__ import annotations

import os
import time

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

PROGRESS_INTERVAL = 25  # seconds; the issue asks for progress at least every 30 s
PROGRESS_INTERVAL_ENV = "LLMD_GKE_PROGRESS_INTERVAL"


class GkeProgressAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    progress_interval = PROGRESS_INTERVAL

    def _progress_interval(self) -> int:
        """progress_interval, or $LLMD_GKE_PROGRESS_INTERVAL when it is a positive number."""
        try:
            value = int(float(os.environ.get(PROGRESS_INTERVAL_ENV, "")))
        except ValueError:
            return self.progress_interval
        return value if value > 0 else self.progress_interval

    def _module_name(self) -> str:
        return getattr(self._task, "resolved_action", None) or self._task.action

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        name = self._module_name()
        try:
            wait = boolean(args.get("wait", True), strict=True)
            timeout = int(args.get("wait_timeout", 1800))
            own_interval = int(args.get("progress_interval", 0) or 0)
        except (TypeError, ValueError) as exc:
            result.update(failed=True, msg=f"Invalid wait option: {exc}")
            return result
        if self._task.check_mode or not wait or own_interval > 0 or timeout <= 0:
            result.update(self._execute_module(name, module_args=args, task_vars=task_vars))
            return result

        start = time.monotonic()
        changed = False
        diff = None
        calls = 0
        label = self._task.get_name().strip() or name
        interval = self._progress_interval()
        while True:
            remaining = timeout - (time.monotonic() - start)
            call = dict(args, progress_interval=interval)
            call["wait_timeout"] = max(int(remaining), 1)
            answer = self._execute_module(name, module_args=call, task_vars=task_vars)
            calls += 1
            changed = changed or bool(answer.get("changed"))
            if diff is None and answer.get("diff") and answer.get("changed"):
                diff = answer["diff"]
            if answer.get("failed") or not answer.get("pending"):
                break
            operation = answer.get("operation") or {}
            elapsed = time.monotonic() - start
            display.display(
                f"  {label}: {operation.get('operationType', 'operation')} "
                f"{operation.get('name', '')} {operation.get('status', '?')}, "
                f"{elapsed:.0f} s elapsed (timeout {timeout} s)"
            )
        result.update(answer)
        result["changed"] = changed
        if diff is not None:
            result["diff"] = diff
        result["wait_calls"] = calls
        total = time.monotonic() - start
        if answer.get("failed") and answer.get("elapsed") is not None and calls > 1:
            result["msg"] = (
                f"{answer.get('msg', '')} (waited {total:.0f} s in all; wait_timeout {timeout} s)"
            )
        return result
