# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs llmd.gke.gke_cluster and prints the Operation's progress during long waits."""

from __future__ import annotations

from ansible_collections.llmd.gke.plugins.plugin_utils.gke_progress import GkeProgressAction


class ActionModule(GkeProgressAction):
    pass
