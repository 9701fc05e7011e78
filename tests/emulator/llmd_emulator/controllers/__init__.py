"""Controllers that make stored objects come alive (see INTERFACE.md, part "controllers").

Each controller subscribes to store events and reconciles in emulated time (emu.clock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core import Emulator


def setup(emu: Emulator) -> None:
    """Start every controller (imports are local: modelserver imports this package)."""
    from .certmanager import CertManager
    from .gateway import Gateways
    from .llmisvc import LLMInferenceServices
    from .operators import Operators
    from .pods import PodRunner
    from .quota import ResourceQuotas
    from .scheduler import Scheduler
    from .workloads import Workloads

    Scheduler(emu)
    PodRunner(emu)
    Workloads(emu)
    ResourceQuotas(emu)
    gateways = Gateways(emu)
    LLMInferenceServices(emu, gateways)
    CertManager(emu)
    Operators(emu)
