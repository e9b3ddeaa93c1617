"""run_shards: results in job order, the same for any worker count, forked workers see globals."""
from __future__ import annotations

import os

import pytest

from nextlat.data.parallel import run_shards

_GLOBAL: dict = {}


def _job(k: int) -> tuple[int, int, int]:
    return k, k * k + _GLOBAL.get("offset", 0), os.getpid()


def test_results_come_back_in_job_order_for_any_worker_count():
    jobs = list(range(7))
    serial = run_shards(_job, jobs, workers=1)
    assert {pid for *_, pid in serial} == {os.getpid()}  # 1 worker: no pool
    for workers in (2, None, 50):
        assert [r[:2] for r in run_shards(_job, iter(jobs), workers)] == [r[:2] for r in serial]
    assert run_shards(_job, [], workers=4) == []


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork")
def test_forked_workers_see_module_globals():
    _GLOBAL["offset"] = 100
    try:
        results = run_shards(_job, [1, 2, 3], workers=2)
    finally:
        _GLOBAL.clear()
    assert [r[1] for r in results] == [101, 104, 109]
    assert os.getpid() not in {r[2] for r in results}


def test_bad_worker_count():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_shards(_job, [1], workers=0)
