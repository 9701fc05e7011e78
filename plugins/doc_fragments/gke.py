# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """API endpoint and wait options of the GKE resource modules (GKE_COMMON_ARG_SPEC)."""

    DOCUMENTATION = r"""
options:
  api_endpoint:
    description:
      - Root URL of the GKE API, for a proxy, a private endpoint or a test server.
      - Accepted with or without a trailing C(v1/).
      - If not set, the value of the E(CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER) environment
        variable (gcloud's convention) is used, else C(https://container.googleapis.com/).
    type: str
  wait:
    description:
      - Wait for the Operation the module starts (and for Operations already running on the
        resource) to finish, then check the resource's status.
      - With V(false) the module returns once GKE has accepted the change; run it again with
        O(wait=true) to wait for it (the run picks up the running Operation).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait in total, on a monotonic clock. At the timeout the module fails with the
        Operation's last status; the Operation goes on in Google Cloud and a new run picks it up.
    type: int
    default: 1800
  poll_interval:
    description:
      - Seconds between two reads of a running Operation.
    type: int
    default: 10
  progress_interval:
    description:
      - When greater than 0 the module returns after this many seconds with RV(pending=true) if
        the Operation still runs. The collection's action plugin for this module sets it, prints
        the Operation's status and elapsed time, and calls the module again with the same
        arguments until it is done or O(wait_timeout) has passed, so long waits show progress.
      - Leave it at 0 when calling the module in any other way.
    type: int
    default: 0
notes:
  - Every change returns a long-running Operation; its error (C(DONE) with C(error)) fails the
    module with Google's message and a hint (quota, permission, stock-out).
  - Calls answered 429, 502, 503, 504 or "operation in progress" are retried with backoff.
"""
