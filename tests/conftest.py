"""Make this checkout importable as ansible_collections.llmd.gke (through the committed
collections/ansible_collections/llmd/gke symlink), for unit tests run with plain pytest."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
