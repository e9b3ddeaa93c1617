"""Shared test helpers (``_tokens``, ``_tiny_run``, ``_workflow``) are importable from every
test folder, including tests/benchmarks/<name>/."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
