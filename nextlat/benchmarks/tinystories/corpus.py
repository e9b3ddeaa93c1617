"""The story corpus, from one of three sources behind one interface (Hugging Face ``datasets``).

* ``hub``       the real TinyStories (``cyrilzhang/TinyStories2-ascii``, the corpus of the
  paper's code, or ``roneneldan/TinyStories``) through ``datasets.load_dataset``; needs the
  Hugging Face hub once (then its cache; ``HF_DATASETS_OFFLINE=1`` reads the cache only).
* ``files``     the user's local stories: ``.txt`` (stories separated by ``separator``, the
  ``<|endoftext|>`` of the TinyStories text dumps, or by blank lines when it is empty),
  ``.jsonl``/``.json`` or ``.parquet`` (the ``text_field`` column).
* ``synthetic`` the offline default: the seeded story grammar of :mod:`.synthetic`.

Every source yields the same thing: a ``datasets.Dataset`` per split with one column ``text``,
one story per row, stripped of surrounding whitespace, empty stories dropped, optionally capped
to the first ``max_train``/``max_validation`` stories. The corpus stage writes the two splits
as parquet plus ``stats.json``: the tokenizer and the token shards are made from those files,
so every later stage reads exactly the same text whatever the source.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ...data.text_files import file_kind
from ...io import atomic_path, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "validation")
TEXT = "text"


def _normalise(ds, field: str, cap: int | None):
    """One ``text`` column of stripped, non-empty stories (the first ``cap`` of them)."""
    if field not in ds.column_names:
        raise ValueError(f"the corpus has no column {field!r} (columns: {ds.column_names}); set text_field")
    ds = ds.select_columns([field])
    if field != TEXT:
        ds = ds.rename_column(field, TEXT)
    ds = ds.map(lambda b: {TEXT: [t.strip() for t in b[TEXT]]}, batched=True)
    ds = ds.filter(lambda b: [bool(t) for t in b[TEXT]], batched=True)
    return ds.select(range(min(cap, len(ds)))) if cap is not None else ds


def _from_hub(cfg: dict, split: str):
    import datasets

    return datasets.load_dataset(cfg["path"], cfg.get("name"), split=cfg[f"{split}_split"],
                                 revision=cfg.get("revision"))


def _from_files(cfg: dict, split: str):
    import datasets

    files = [str(Path(f)) for f in cfg[split]]
    if not files:
        raise ValueError(f"benchmarks.tinystories.corpus.files.{split} lists no file")
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"benchmarks.tinystories.corpus.files.{split}: {missing[0]} does not exist")
    kind = file_kind(files, f"benchmarks.tinystories.corpus.files.{split}")
    if kind == "text":  # streamed line by line: the TinyStories dumps are ~2 GB single files
        import pyarrow as pa

        stories = list(_txt_stories(files, cfg["separator"]))
        return datasets.Dataset(pa.table({TEXT: pa.array(stories, type=pa.large_string())}))
    return datasets.load_dataset(kind, data_files=files, split="train")


def _txt_stories(files: list[str], separator: str):
    """Stories of text files, cut at lines holding ``separator`` (or at blank lines when it is
    empty); a story never spans two files."""
    for path in files:
        lines: list[str] = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if (separator and separator in line) or (not separator and not line.strip()):
                    head, _, tail = line.partition(separator) if separator else ("", "", "")
                    lines.append(head)
                    yield "".join(lines)
                    lines = [tail] if tail.strip() else []
                else:
                    lines.append(line)
        if lines:
            yield "".join(lines)


def _synthetic(cfg: dict, split: str):
    import datasets

    from .synthetic import generate_stories

    n = cfg["n_train"] if split == "train" else cfg["n_validation"]
    return datasets.Dataset.from_dict({TEXT: generate_stories(n, cfg["seed"], split)})


SOURCES = {"hub": _from_hub, "files": _from_files, "synthetic": _synthetic}


def load_corpus(corpus_cfg: dict, split: str):
    """The ``split`` of the configured corpus as a ``datasets.Dataset`` with a ``text`` column."""
    source = corpus_cfg["source"]
    if source not in SOURCES:
        raise ValueError(f"benchmarks.tinystories.corpus.source={source!r}; choose from {sorted(SOURCES)}")
    sub = corpus_cfg[source]
    ds = SOURCES[source](sub, split)
    field = sub.get("text_field", TEXT) if source != "synthetic" else TEXT
    return _normalise(ds, field, corpus_cfg.get(f"max_{split}"))


_STRIP = ".,!?;:\"'()"


def words(text: str) -> list[str]:
    """Lowercase words: whitespace-separated, surrounding punctuation stripped."""
    return [w for w in (t.strip(_STRIP).lower() for t in text.split()) if w]


def word_stats(texts) -> dict:
    """Stories, words, distinct lowercase words, mean and max words per story, characters."""
    counts, distinct, chars = [], set(), 0
    for text in texts:
        ws = words(text)
        counts.append(len(ws))
        distinct.update(ws)
        chars += len(text)
    total = sum(counts)
    return {"stories": len(counts), "words": total, "distinct_words": len(distinct),
            "mean_words": total / len(counts) if counts else 0.0, "max_words": max(counts, default=0),
            "chars": chars}


def make_corpus(inputs: dict, outputs: dict, params: dict) -> dict:
    """Corpus stage: write ``train.parquet``, ``validation.parquet`` (column ``text``) and
    ``stats.json`` (per split: stories, words, distinct words, characters; the source)."""
    import datasets

    datasets.disable_caching()  # nothing of a run goes to ~/.cache beyond the hub's download
    datasets.disable_progress_bars()  # our own log lines say what was read and written
    cfg = params["corpus"]
    stats = {"source": cfg["source"], "source_config": cfg[cfg["source"]]}
    for split in SPLITS:
        start = time.perf_counter()
        ds = load_corpus(cfg, split)
        if len(ds) == 0:
            raise ValueError(f"the {split} split of the {cfg['source']} corpus holds no story")
        with atomic_path(outputs[split]) as tmp:
            ds.to_parquet(str(tmp))
        stats[split] = word_stats(ds[TEXT])
        log.info("%s split: %d stories (%s) -> %s in %.1f s", split, len(ds), stats[split], outputs[split],
                 time.perf_counter() - start)
    write_json(outputs["stats"], stats)
    return stats


def read_split(path: str | Path):
    """A corpus split written by :func:`make_corpus`, as an in-memory ``datasets.Dataset`` over
    the parquet table (nothing is copied into the ``datasets`` cache; a damaged file is named)."""
    import datasets

    from ...data.store import read_parquet

    datasets.disable_progress_bars()
    return datasets.Dataset(read_parquet(path, columns=[TEXT]))
