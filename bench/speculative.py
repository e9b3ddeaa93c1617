"""Self-speculative decoding speed-up of trained models on CPU (paper Tables 3 and 7).

For every run folder that holds a model.pt of a self-drafting method (NextLat, MTP, JTP), it
times plain KV-cached greedy decoding and speculative decoding at each draft length, prompt
by prompt in one process (nextlat.evaluation.speculative.measure), with the drafter reading
the whole vocabulary and, with --draft-vocab, only the K most frequent training tokens. It
also times one drafter step against one plain decoding step (the cost ratio c that bounds
the speed-up: with a accepted drafts per step of g drafted, speed-up ~ (a + 1) / (1 + g c)).

    make demo   # or: snakemake table2 --cores 2   (trains the default FineWeb-Edu models)
    .venv/bin/python bench/speculative.py                        # ~3 min, one thread
    .venv/bin/python bench/speculative.py --gammas 1,2,4,8 --draft-vocab 0,1024,4096 --json out.json

Prompts come from the pipeline's prompts.json (all four domains, ``--n-prompts`` each).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.decoding import generate  # noqa: E402
from nextlat.decoding.drafters import SELF_DRAFTING, frequent_tokens, self_drafter  # noqa: E402
from nextlat.decoding.speculative import DraftLength  # noqa: E402
from nextlat.evaluation.speculative import measure  # noqa: E402
from nextlat.training.checkpoint import load_model  # noqa: E402


def cost_ratio(model, vocab, prompt: list[int], rounds: int = 30) -> float:
    """Seconds of one drafter step over seconds of one plain (KV-cached) decoding step."""
    drafter = self_drafter(model, vocab)
    n, g = 16, 8
    with torch.no_grad():
        generate(model, [prompt], n)  # warm-up
        start = time.perf_counter()
        for _ in range(rounds // 10 or 1):
            generate(model, [prompt], n)
        plain = (time.perf_counter() - start) / (rounds // 10 or 1) / n
        cache = model.make_cache(1, len(prompt) + g + 1, "cpu")
        drafter.observe(model, torch.tensor([prompt]), cache)
        ctx = torch.tensor(prompt + [prompt[-1]])
        cap = min(g, drafter.max_draft or g)
        drafter.propose(ctx, len(prompt) - 1, DraftLength(cap), 0.0, None)
        start = time.perf_counter()
        for _ in range(rounds):
            drafter.propose(ctx, len(prompt) - 1, DraftLength(cap), 0.0, None)
        draft = (time.perf_counter() - start) / rounds / cap
    return draft / plain


def overall(domains: dict) -> list[dict]:
    """Per setting over all domains: total tokens / total seconds against plain decoding's."""
    ar_rate = sum(d["ar"]["tokens"] for d in domains.values()) / sum(d["ar"]["seconds"] for d in domains.values())
    out = []
    first = next(iter(domains.values()))
    for k, s in enumerate(first["settings"]):
        rows = [d["settings"][k] for d in domains.values()]
        steps = sum(r["steps"] for r in rows)
        out.append({"name": s["name"], "gamma": s["gamma"], "threshold": s["threshold"],
                    "speedup": sum(r["tokens"] for r in rows) / sum(r["seconds"] for r in rows) / ar_rate,
                    "accepted_per_step": sum(r["accepted_per_step"] * r["steps"] for r in rows) / steps,
                    "drafted_per_step": sum(r["drafted_per_step"] * r["steps"] for r in rows) / steps})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="results/default/fineweb/runs", help="folder of run folders (model.pt)")
    ap.add_argument("--prompts", default="results/default/fineweb/speculative/prompts.json")
    ap.add_argument("--data", default="results/default/fineweb/data/fw", help="training data (draft vocabulary)")
    ap.add_argument("--n-prompts", type=int, default=8, help="prompts per domain")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--gammas", default="1,2,4,6,9")
    ap.add_argument("--thresholds", default="0.1,0.3", help="adaptive policies ('' for none)")
    ap.add_argument("--draft-vocab", default="0,4096", help="drafter vocabularies to compare (0 = all)")
    ap.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the paper's top_k = 1)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    prompts_file = Path(args.prompts)
    if not prompts_file.is_file():
        sys.exit(f"{prompts_file} not found: build it first (snakemake {prompts_file} --cores 1)")
    record = json.loads(prompts_file.read_text())
    prompts = {d: v["prompts"][: args.n_prompts] for d, v in record["domains"].items()}
    runs = sorted(p.parent for p in Path(args.runs).glob("*/model.pt"))
    models = [(p.name, load_model(p / "model.pt")) for p in runs]
    models = [(name, m) for name, m in models if m.name in SELF_DRAFTING]
    if not models:
        sys.exit(f"no model.pt of a self-drafting method ({', '.join(SELF_DRAFTING)}) under {args.runs}")
    sizes = [int(k) for k in args.draft_vocab.split(",")]
    train = None
    if any(sizes):
        from nextlat import benchmarks

        train, _ = benchmarks.get("fineweb").load_train(Path(args.data))
    decoding = {"new_tokens": args.new_tokens, "temperature": args.temperature,
                "gammas": [int(g) for g in args.gammas.split(",")],
                "adaptive": {"thresholds": [float(t) for t in args.thresholds.split(",") if t],
                             "max_gamma": max(int(g) for g in args.gammas.split(","))},
                "warmup_prompts": 1}
    first_prompt = next(iter(prompts.values()))[0]
    results = []
    start = time.perf_counter()
    for name, model in models:
        for k in sizes:
            vocab = frequent_tokens(train.stream(0, train.n_tokens), k, model.model_cfg.vocab_size) if k else None
            domains = measure(model, prompts, decoding, seed=0, device="cpu", vocab=vocab)
            rows = overall(domains)
            best = max((r for r in rows if r["threshold"] is None), key=lambda r: r["speedup"])
            results.append({"run": name, "method": model.name, "horizon": model.settings.horizon,
                            "draft_vocab": k or model.model_cfg.vocab_size, "vocab_arg": k,
                            "cost_ratio": cost_ratio(model, vocab, first_prompt), "best": best, "settings": rows,
                            "distinct_fraction": sum(d["ar"]["distinct_fraction"] for d in domains.values())
                            / len(domains),
                            "plain_tokens_per_s": sum(d["ar"]["tokens"] for d in domains.values())
                            / sum(d["ar"]["seconds"] for d in domains.values())})
            r = results[-1]
            print(f"{name:20s} vocab {r['draft_vocab']:>6d}  c={r['cost_ratio']:.2f}  plain "
                  f"{r['plain_tokens_per_s']:.0f} tok/s  distinct {r['distinct_fraction']:.2f}  best {best['name']}: {best['speedup']:.2f}x, "
                  f"{best['accepted_per_step']:.2f} accepted/step", flush=True)

    print(f"\n{len(prompts)} domains x {args.n_prompts} prompts x {args.new_tokens} new tokens, "
          f"temperature {args.temperature}, "
          f"{args.threads} thread(s), {time.perf_counter() - start:.0f} s\n")
    names = list(dict.fromkeys(s["name"] for r in results for s in r["settings"]))
    print("| run | draft vocab | c | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for r in results:
        cells = {s["name"]: f"{s['speedup']:.2f}x / {s['accepted_per_step']:.2f}" for s in r["settings"]}
        print(f"| {r['run']} | {r['draft_vocab']} | {r['cost_ratio']:.2f} | "
              + " | ".join(cells.get(n, "—") for n in names) + " |")
    # the paper's ordering at equal horizon: NextLat > JTP > MTP (best fixed draft length)
    print()
    for k in sizes:
        for h in sorted({r["horizon"] for r in results}):
            best = {r["method"]: r["best"]["speedup"] for r in results if r["horizon"] == h and r["vocab_arg"] == k}
            if {"nextlat", "jtp", "mtp"} <= set(best):
                holds = best["nextlat"] > best["jtp"] > best["mtp"]
                print(f"d={h}, draft vocab {k or 'all'}: NextLat {best['nextlat']:.2f}x, JTP {best['jtp']:.2f}x, "
                      f"MTP {best['mtp']:.2f}x -> NextLat > JTP > MTP {'holds' if holds else 'does not hold'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
