"""Self-speculative decoding of the FineWeb-Edu models (Tables 3 and 7): the prompts, the
draft vocabulary, the per-run measurement, the plan-time checks and the report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from nextlat import config as nlconfig
from nextlat.benchmarks.fineweb import EOT_ID, decoding_report, paper, prompts
from nextlat.config import ConfigError
from nextlat.decoding import generate
from nextlat.decoding.drafters import frequent_tokens, self_drafter
from nextlat.decoding.speculative import DraftLength, speculative_generate
from nextlat.evaluation.speculative import draft_lengths, measure
from nextlat.io import write_json
from nextlat.objectives.base import build_objective
from nextlat.report import speculative as speculative_report
from nextlat.runs import expand_runs

ROOT = Path(__file__).resolve().parents[3]


# --- prompts ---------------------------------------------------------------------------------
def _chars(text: str) -> list[int]:  # a toy tokenizer: one id per character
    return [ord(c) for c in text]


def test_prompts_start_at_a_document_and_continue_into_the_next():
    docs = iter(["abcdefghij", "", "xy", "12", "long document here", "zz"])
    out, used = prompts.cut_prompts(docs, n_prompts=3, prompt_tokens=6, encode=_chars)
    sep = _chars("\n\n")
    assert out[0] == [EOT_ID] + _chars("abcde")  # a long document: its start only
    assert out[1] == ([EOT_ID] + _chars("xy") + sep + _chars("12"))[:6]  # short ones joined by a blank line
    assert out[2] == [EOT_ID] + _chars("long ")
    assert used == 4  # the empty document is skipped, "zz" is never read
    few, used = prompts.cut_prompts(iter(["ab", "cd"]), n_prompts=5, prompt_tokens=20, encode=_chars)
    assert few == [] and used == 2  # not enough text: no partial prompt


@pytest.mark.parametrize("domain", prompts.DOMAINS)
def test_offline_domains_are_real_text(domain):
    docs, where = prompts.documents(domain, {"source": "offline", "seed": 0})
    docs = list(docs)
    assert len(docs) >= 100 and len(set(docs)) == len(docs) and where
    sample = " ".join(docs[:20])
    expect = {"wikipedia": " the ", "books": " the ", "code": "def ", "math": "="}[domain]
    assert expect in sample
    again, _ = prompts.documents(domain, {"source": "offline", "seed": 0})
    other, _ = prompts.documents(domain, {"source": "offline", "seed": 1})
    assert list(again) == docs and list(other) != docs  # the seed orders the documents


def test_make_prompts_writes_every_domain(tmp_path):
    out = tmp_path / "prompts.json"
    cfg = {"source": "offline", "domains": ["math", "wikipedia"], "n_prompts": 3, "prompt_tokens": 12, "seed": 0}
    prompts.make_prompts({}, {"prompts": str(out)}, {"prompts": cfg})
    rec = json.loads(out.read_text())
    assert list(rec["domains"]) == ["math", "wikipedia"] and rec["prompt_tokens"] == 12
    for d in rec["domains"].values():
        assert len(d["prompts"]) == 3 and all(len(p) == 12 and p[0] == EOT_ID for p in d["prompts"])
        assert d["note"] is None and d["documents"] >= 3
    short = dict(cfg, n_prompts=100_000)
    prompts.make_prompts({}, {"prompts": str(out)}, {"prompts": dict(short, domains=["math"])})
    assert "only" in json.loads(out.read_text())["domains"]["math"]["note"]  # a shortfall is said


def test_hub_prompts_stream_the_configured_dataset(monkeypatch):
    import datasets

    calls = []

    class Rows(list):
        def shuffle(self, seed, buffer_size):
            calls.append(("shuffle", seed, buffer_size))
            return self

    def fake(path, name=None, split=None, revision=None, streaming=False):
        calls.append((path, name, split, streaming))
        return Rows({"content": f"doc {i}"} for i in range(3))

    monkeypatch.setattr(datasets, "load_dataset", fake)
    hub = {"code": {"path": "some/code", "name": None, "split": "train", "text_field": "content", "revision": None}}
    docs, where = prompts.documents("code", {"source": "hub", "seed": 5, "hub": hub})
    assert list(docs) == ["doc 0", "doc 1", "doc 2"] and "some/code" in where
    assert calls == [("some/code", None, "train", True), ("shuffle", 5, 10_000)]


# --- plan-time checks ------------------------------------------------------------------------
def _plan(**fineweb):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    return expand_runs(nlconfig.resolve(raw, "smoke", {"benchmarks": {"fineweb": fineweb}}), "fineweb")


def test_plan_time_checks_of_the_speculative_block():
    assert _plan()
    where = r"benchmarks\.fineweb\.speculative"
    with pytest.raises(ConfigError, match=where + r".*prompt_tokens=30.*block_size=33"):
        _plan(speculative={"prompts": {"prompt_tokens": 30}, "decoding": {"new_tokens": 10}})
    assert _plan(speculative={"prompts": {"prompt_tokens": 24}, "decoding": {"new_tokens": 10}})  # 33 positions
    with pytest.raises(ConfigError, match=where + r"\.decoding\.gammas lists a value twice"):
        _plan(speculative={"decoding": {"gammas": [2, 2]}})
    with pytest.raises(ConfigError, match=where + r"\.decoding\.draft_vocab=60000"):
        _plan(speculative={"decoding": {"draft_vocab": 60000}})
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.speculative\.decoding\.gamas"):
        _plan(speculative={"decoding": {"gamas": [1]}})  # a typo is refused by the schema
    assert _plan(speculative={"enabled": False, "prompts": {"prompt_tokens": 99}})  # off: not checked


# --- drafting from a shortlist ---------------------------------------------------------------
def test_frequent_tokens_rank_by_count_then_id():
    tokens = np.array([5, 5, 5, 2, 2, 9, 9, 1, 7])
    assert frequent_tokens(tokens, 3, 10).tolist() == [2, 5, 9]  # 5 (3), then 2 and 9 (2 each)
    assert frequent_tokens(tokens, 4, 10).tolist() == [1, 2, 5, 9]  # ties at 1: the smaller id (1)


def _tiny(method, **keys):
    torch.manual_seed(0)
    obj = build_objective({"vocab_size": 40, "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 40,
                           "eos_id": 0}, {"name": method, **keys})
    with torch.no_grad():
        for p in obj.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    return obj.eval()


@pytest.mark.parametrize("method,keys", [("nextlat", {"horizon": 1, "dyn_hidden": 16}), ("jtp", {"horizon": 2}),
                                         ("mtp", {"horizon": 2})])
def test_a_shortlisted_drafter_drafts_only_its_tokens_and_stays_exact(method, keys, one_thread_module):
    target = _tiny(method, **keys)
    vocab = torch.arange(0, 40, 2)  # even ids only
    drafter = self_drafter(target, vocab)
    prompt = [0, 3, 4, 5]
    want = generate(target, [prompt], 20, temperature=0.0).tolist()[0]
    got, stats = speculative_generate(target, drafter, prompt, 20, 3, temperature=0.0)
    assert got == want
    cache = target.make_cache(1, 40, "cpu")
    drafter.observe(target, torch.tensor([prompt]), cache)
    draft = drafter.propose(torch.tensor(prompt + [7]), len(prompt) - 1, DraftLength(2), 1.0,
                            torch.Generator().manual_seed(0))
    assert all(t % 2 == 0 for t in draft.tokens.tolist())
    assert float(draft.probs[:, 1::2].abs().sum()) == 0.0  # q is 0 off the shortlist
    torch.testing.assert_close(draft.probs.sum(-1), torch.ones(len(draft)))


# --- the measurement -------------------------------------------------------------------------
def test_draft_lengths_respect_the_drafters_limit():
    dec = {"gammas": [1, 2, 4, 8], "adaptive": {"thresholds": [0.2], "max_gamma": 8}}
    names = [x.name for x in draft_lengths(dec, 2)]
    assert names == ["gamma=1", "gamma=2", "adaptive(tau=0.2,max=2)"]
    assert [x.gamma for x in draft_lengths(dec, None)] == [1, 2, 4, 8, 8]


def test_measure_reports_every_setting_per_domain(one_thread_module):
    target = _tiny("nextlat", horizon=1, dyn_hidden=16)
    ps = {"a": [[0, 1, 2, 3], [0, 5, 6]], "b": [[0, 9, 9, 9, 9]]}
    dec = {"new_tokens": 10, "temperature": 0.0, "gammas": [1, 3],
           "adaptive": {"thresholds": [0.3], "max_gamma": 3}, "warmup_prompts": 1}
    out = measure(target, ps, dec, seed=0, device="cpu")
    assert set(out) == {"a", "b"}
    for domain, d in out.items():
        assert d["prompts"] == len(ps[domain]) and d["ar"]["tokens"] == 10 * len(ps[domain])
        assert [s["name"] for s in d["settings"]] == ["gamma=1", "gamma=3", "adaptive(tau=0.3,max=3)"]
        for s in d["settings"]:
            assert s["tokens"] == 10 * len(ps[domain]) and s["greedy_match"] == 1.0
            assert s["speedup"] > 0 and s["steps"] >= 1
            assert s["accepted_per_step"] == pytest.approx(sum(s["accepted"]) / s["steps"])
            assert len(s["proposed"]) <= s["gamma"]
            # every emitted token: the prefill's, plus per step the accepted drafts and one more
            assert s["tokens"] == len(ps[domain]) + s["steps"] + sum(s["accepted"])
        assert 1 / 10 <= d["ar"]["distinct_fraction"] <= 1.0


def test_distinct_fraction_is_the_mean_share_of_distinct_tokens(monkeypatch, one_thread_module):
    """A model that loops on one token has 1/new_tokens distinct; the mean is over prompts."""
    import nextlat.evaluation.speculative as ev

    target = _tiny("nextlat", horizon=1, dyn_hidden=16)
    outs = iter([[7] * 10, list(range(10))])  # plain decoding of prompt 1 loops, of prompt 2 not
    monkeypatch.setattr(ev, "generate", lambda *a, **k: torch.tensor([next(outs)]))
    dec = {"new_tokens": 10, "temperature": 0.0, "gammas": [1], "adaptive": {"thresholds": []},
           "warmup_prompts": 0}
    out = measure(target, {"a": [[0, 1, 2], [0, 4]]}, dec, seed=0, device="cpu")
    assert out["a"]["ar"]["distinct_fraction"] == pytest.approx((0.1 + 1.0) / 2)


# --- the report ------------------------------------------------------------------------------
def _record(method, horizon, seed, speedups: dict, accepted: float = 1.0, distinct: float = 0.9):
    settings = []
    for name, sp in speedups.items():
        adaptive = name.startswith("adaptive")
        gamma = 3 if adaptive else int(name.split("=")[1])
        settings.append({"name": name, "gamma": gamma, "threshold": 0.2 if adaptive else None, "tokens": 100,
                         "seconds": 1.0, "tokens_per_s": 100.0, "speedup": sp, "steps": 10,
                         "accepted_per_step": accepted * gamma / 3, "drafted_per_step": gamma,
                         "proposed": [10] * gamma, "checked": [10] * gamma, "accepted": [5] * gamma,
                         "acceptance_by_position": [0.5] * gamma, "greedy_match": 1.0})
    dom = {"prompts": 2, "ar": {"tokens": 100, "seconds": 1.0, "tokens_per_s": 100.0, "distinct_fraction": distinct},
           "settings": settings}
    return {"run": {"run_id": f"fw_{method}-d{horizon}_s{seed}", "method": method, "horizon": horizon,
                    "seed": seed}, "device": "cpu", "threads": 1, "draft_vocab": None, "prompt_tokens": 8,
            "max_draft": horizon if method in ("mtp", "jtp") else None,
            "decoding": {"new_tokens": 12, "temperature": 0.0},
            "domains": {"wikipedia": dom, "code": json.loads(json.dumps(dom))}}


@pytest.fixture
def report_inputs(tmp_path):
    recs = [_record("nextlat", 1, 0, {"gamma=1": 1.2, "gamma=3": 2.0, "adaptive(tau=0.2,max=3)": 2.5}),
            _record("nextlat", 1, 1, {"gamma=1": 1.6, "gamma=3": 1.4, "adaptive(tau=0.2,max=3)": 2.1}),
            _record("mtp", 2, 0, {"gamma=1": 1.3, "gamma=2": 1.1, "adaptive(tau=0.2,max=3)": 1.0})]
    paths = [write_json(tmp_path / f"r{i}.json", r) for i, r in enumerate(recs)]
    pr = write_json(tmp_path / "prompts.json", {"source": "offline", "prompt_tokens": 8, "domains": {
        d: {"source": f"{d} text", "documents": 2, "note": None, "prompts": [[1], [2]]} for d in ("wikipedia", "code")}})
    return {"records": [str(p) for p in paths], "prompts": str(pr)}


def test_table3_takes_the_best_fixed_length_per_seed(report_inputs, tmp_path):
    df = speculative_report.speculative_frame([json.loads(Path(p).read_text()) for p in report_inputs["records"]])
    t3 = speculative_report.summary_frame(df, paper.PAPER_TABLE3, paper.DOMAIN_LABELS)
    rows = t3[t3["policy"] == "paper's draft length"]
    best = rows[(rows["method"] == "nextlat") & (rows["domain"] == "code")].iloc[0]
    assert best["speedup_mean"] == pytest.approx((2.0 + 1.6) / 2)  # NextLat's fastest: seed 0 gamma=3, seed 1 gamma=1
    assert best["speedup_std"] == pytest.approx(np.std([2.0, 1.6], ddof=1))
    assert best["gammas"] == "1,3" and best["seeds"] == 2
    mtp = rows[(rows["method"] == "mtp") & (rows["domain"] == "code")].iloc[0]
    assert mtp["speedup_mean"] == pytest.approx(1.1) and mtp["gammas"] == "2"  # MTP d=2 drafts d tokens, as the paper
    assert (best["paper_speedup"], best["paper_accepted"]) == paper.PAPER_TABLE3[("nextlat", 1)]["code"]
    ada = t3[(t3["method"] == "nextlat") & (t3["policy"] == "adaptive(tau=0.2,max=3)")].iloc[0]
    assert ada["speedup_mean"] == pytest.approx(2.3) and np.isnan(ada["paper_speedup"])
    order = list(dict.fromkeys(t3["model"]))
    assert order == ["MTP d=2", "NextLat d=1"]  # the paper's row order
    out = {"csv": str(tmp_path / "t3.csv"), "md": str(tmp_path / "t3.md")}
    decoding_report.table3(report_inputs, out, {})
    md = Path(out["md"]).read_text()
    assert "1.80 ± 0.28× / " in md and "[γ 1,3] (2.68× / 3.52)" in md and "paper gamma = ours + 1" in md
    assert len(pd.read_csv(out["csv"])) == len(t3)
    assert "90% distinct tokens" in md and "WARNING" not in md


def test_the_report_warns_when_continuations_are_a_loop(report_inputs, tmp_path):
    looping = _record("jtp", 1, 0, {"gamma=1": 1.9}, distinct=0.05)
    report_inputs["records"].append(str(write_json(tmp_path / "loop.json", looping)))
    out = {"csv": str(tmp_path / "t3.csv"), "md": str(tmp_path / "t3.md")}
    decoding_report.table3(report_inputs, out, {})
    md = Path(out["md"]).read_text()
    assert "lowest run 5%" in md and "WARNING: some models' continuations are degenerate" in md


def test_table7_and_the_figure(report_inputs, tmp_path):
    out = {"csv": str(tmp_path / "t7.csv"), "md": str(tmp_path / "t7.md")}
    decoding_report.table7(report_inputs, out, {})
    t7 = pd.read_csv(out["csv"])
    assert set(t7["setting"]) == {"gamma=1", "gamma=2", "gamma=3", "adaptive(tau=0.2,max=3)"}
    assert "0.50 0.50 0.50" in Path(out["md"]).read_text()  # 5 of 10 checked at each position
    fig = {"png": str(tmp_path / "f.png"), "pdf": str(tmp_path / "f.pdf")}
    decoding_report.fig_draft_length(report_inputs, fig, {})
    assert Path(fig["png"]).stat().st_size > 10_000 and Path(fig["pdf"]).is_file()
