"""Evaluation decoding with and without the KV cache (nextlat.decoding.generate).

Three workloads shaped like the evaluations, each decoded by the same model with
``use_cache=True`` and ``use_cache=False`` in one process, interleaved (the order flips
every repeat) so load changes hit both alike; the table reports median seconds, the
median of per-repeat speed-ups, and whether both produced the same tokens:

* ``pathstar``: prompts of sampled Path-Star G(3,4) graphs (30 tokens, 100 nodes) + 4 tokens,
  greedy and sampled (temperature 1), as ``evaluate_pathstar``; a 2-layer x 64 model.
* ``manhattan greedy``: prompts ``end SRC DEST`` + up to 100 tokens with a ``pick``, as the
  valid-trajectories and detour tests; each row ends (EOS) at a step drawn uniformly from
  10..100, standing in for a trained model reaching DEST; a 3-layer x 96 model, V = 128.
* ``manhattan sample``: the compression test's shape: prefixes of 4..63 tokens, budgets
  ``100 - (prefix - 1)``, multinomial draws for the active rows, the same random stops.

    .venv/bin/python bench/decoding.py                  # ~2 min on one CPU core
    .venv/bin/python bench/decoding.py --repeats 5 --methods gpt,mtp,jtp --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.benchmarks.pathstar import data as ps  # noqa: E402
from nextlat.decoding import generate  # noqa: E402
from nextlat.objectives import available, build_objective  # noqa: E402

EOS = 0


def model(name: str, vocab: int, layers: int, heads: int, dim: int, block: int, device):
    torch.manual_seed(0)
    cfg = dict(vocab_size=vocab, n_layer=layers, n_head=heads, n_embd=dim, block_size=block, eos_id=EOS)
    return build_objective(cfg, {"name": name}).to(device).eval()


class StopAt:
    """Greedy (or sampled) picks, never EOS except at each row's drawn stop step."""

    def __init__(self, stop: np.ndarray, sample: bool, seed: int, device):
        self.stop, self.sample = torch.from_numpy(stop), sample
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, rows, logits, step):
        logits = logits.float().index_fill(-1, torch.tensor([EOS], device=logits.device), float("-inf"))
        if self.sample:
            out = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen).squeeze(-1)
        else:
            out = logits.argmax(-1)
        return torch.where((self.stop[rows] == step).to(out.device), EOS, out)


def workloads(batch: int, methods: list[str], device) -> list[tuple[str, str, callable]]:
    rng = np.random.default_rng(0)
    g = ps.sample_graphs(batch, 3, 4, 100, rng)
    rows = ps.PathStarTokenizer(100).encode_rows(g.edges, g.source, g.goal, g.path)
    ps_prompt = torch.from_numpy(rows[:, : ps.prompt_len(3, 4)].astype(np.int64)).to(device)
    V = 128
    mh_prompts = [[EOS, *rng.integers(1, V, 2).tolist()] for _ in range(batch)]
    stop = rng.integers(9, 100, batch)  # step of the EOS: 10..100 tokens per walk
    prefixes = [[EOS, *rng.integers(1, V, int(k) + 2).tolist()] for k in rng.integers(1, 61, batch)]
    budgets = [100 - (len(p) - 1) for p in prefixes]
    stop_c = np.array([rng.integers(4, b) for b in budgets])

    out = []
    for name in methods:
        m_ps = model(name, ps.vocab_size(100), 2, 2, 64, rows.shape[1], device)
        m_mh = model(name, V, 3, 4, 96, 128, device)

        def pathstar(use_cache, m=m_ps):
            gen = torch.Generator(device=device).manual_seed(0)
            return [generate(m, ps_prompt, 4, use_cache=use_cache).tokens,
                    generate(m, ps_prompt, 4, temperature=1.0, generator=gen, use_cache=use_cache).tokens]

        def manhattan_greedy(use_cache, m=m_mh):
            return generate(m, mh_prompts, 100, pick=StopAt(stop, False, 0, device), eos_id=EOS, device=device,
                            use_cache=use_cache).tolist()

        def manhattan_sample(use_cache, m=m_mh):
            return generate(m, prefixes, budgets, pick=StopAt(stop_c, True, 0, device), eos_id=EOS, device=device,
                            use_cache=use_cache).tolist()

        out += [(name, "pathstar G(3,4) 30+4", pathstar), (name, "manhattan greedy 3+<=100", manhattan_greedy),
                (name, "manhattan sample 4..63+<=99", manhattan_sample)]
    return out


def timed(fn, use_cache, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    result = fn(use_cache)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, result


def same(a, b) -> bool:
    if isinstance(a, list) and a and isinstance(a[0], torch.Tensor):
        return all(torch.equal(x, y) for x, y in zip(a, b))
    return a == b


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="gpt", help=f"comma-separated, from {available()}")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2, help="each order (cached first / uncached first) once")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"{args.repeats} repeats (+1 cached warm-up)")
    print(f"{'method':8} {'workload':28} {'uncached s':>10} {'cached s':>9} {'speed-up':>9} {'(min)':>6}  same tokens")
    for name, label, fn in workloads(args.batch, args.methods.split(","), device):
        timed(fn, True, device)  # warm-up (the uncached path runs the same kernels)
        t = {True: [], False: []}
        ratios, identical = [], True
        for r in range(args.repeats):
            res = {}
            for use_cache in ((True, False) if r % 2 else (False, True)):
                sec, res[use_cache] = timed(fn, use_cache, device)
                t[use_cache].append(sec)
            ratios.append(t[False][-1] / t[True][-1])
            identical &= same(res[True], res[False])
        print(f"{name:8} {label:28} {statistics.median(t[False]):10.3f} {statistics.median(t[True]):9.3f} "
              f"{statistics.median(ratios):8.1f}x {min(t[False]) / min(t[True]):5.1f}x  {'yes' if identical else 'NO'}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
