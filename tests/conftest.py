"""Shared test helpers (``_tokens``, ``_tiny_run``, ``_workflow``) are importable from every
test folder, including tests/benchmarks/<name>/."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def one_thread_module():
    """Tiny models: one intra-op thread is fastest, and avoids oversubscribing shared CPUs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
