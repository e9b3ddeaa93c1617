"""TinyStories corpus sources, tokenizer and token shards: what goes in comes out.

The BPE round-trips every training story; the stream is ``EOS s_1 EOS s_2 ...`` of the kept
stories; stories longer than a block are dropped and counted; the ``files`` and ``hub``
sources read local files (the hub loader is pointed at a local dataset); damaged shards are
refused naming the file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nextlat.benchmarks.tinystories import corpus, data, synthetic
from nextlat.benchmarks.tinystories import tokenizer as bpe
from nextlat.data.shards import read_shard, write_shard
from nextlat.data.store import DataError
from nextlat.stages.call import call_stage

BLOCK = 256


@pytest.fixture(scope="module")
def stories():
    return synthetic.generate_stories(1500, seed=0)


@pytest.fixture(scope="module")
def tok(stories):
    return bpe.train_bpe([stories], 1000)


def test_bpe_has_the_originals_layout(tok):
    assert tok.get_vocab_size() == 1000
    assert tok.token_to_id("<|pad|>") == 0 and tok.token_to_id("<|eos|>") == 1
    ids = tok.encode("Tom had 12 apples.").ids
    digits = [tok.id_to_token(i) for i in ids if tok.id_to_token(i).strip("Ġ").isdigit()]
    assert digits == ["Ġ", "1", "2"][-len(digits):] or digits == ["1", "2"]  # one digit per token


def test_bpe_round_trips_every_training_story(stories, tok):
    encoded = tok.encode_batch(stories)
    assert all(bpe.decode(tok, e.ids) == s for e, s in zip(encoded, stories))
    assert bpe.decode(tok, tok.encode("Zoë said «hi» 2024!").ids) == "Zoë said «hi» 2024!"  # any bytes


def test_synthetic_stories_fit_the_block(stories, tok):
    lengths = np.array([len(e.ids) for e in tok.encode_batch(stories)])
    assert (lengths + 1 > BLOCK).mean() < 0.02  # nearly all stories fit with their EOS


def test_given_tokenizer_with_other_special_ids_is_refused(tmp_path, tok):
    from tokenizers import Tokenizer, models

    other = Tokenizer(models.BPE(vocab={"a": 0, "<|pad|>": 1, "<|eos|>": 2}, merges=[]))
    other.save(str(tmp_path / "t.json"))
    with pytest.raises(ValueError, match="must map <\\|pad\\|> to 0 and <\\|eos\\|> to 1"):
        bpe.load(tmp_path / "t.json")


def _corpus_files(tmp_path, cfg):
    out = {k: tmp_path / "corpus" / f"{k}.{'json' if k == 'stats' else 'parquet'}"
           for k in ("train", "validation", "stats")}
    call_stage("tinystories", "corpus:make_corpus", {}, out, {"corpus": cfg})
    return out


def _synthetic_cfg(n_train=300, n_val=40):
    return {"source": "synthetic", "synthetic": {"n_train": n_train, "n_validation": n_val, "seed": 3},
            "max_train": None, "max_validation": None}


def test_data_stage_streams_the_kept_stories_between_eos(tmp_path):
    files = _corpus_files(tmp_path, _synthetic_cfg())
    tok_file = tmp_path / "tokenizer.json"
    call_stage("tinystories", "tokenizer:make_tokenizer", {"train": files["train"]}, {"tokenizer": tok_file},
               {"tokenizer": {"vocab_size": 1000, "file": None}})
    block = 200  # below the longest stories, so some are dropped
    out = tmp_path / "data"
    meta = data.make_data("ts", {"block_size": block, "shard_tokens": 5000, "seed": 0, "vocab_size": 1000},
                          out, 1, inputs={"train": files["train"], "validation": files["validation"],
                                          "tokenizer": tok_file})
    tok = bpe.load(tok_file)
    texts = corpus.read_split(files["train"])["text"]
    lengths = [len(tok.encode(t).ids) for t in texts]
    kept = {t for t, n in zip(texts, lengths) if n + 1 <= block}
    assert meta["train"]["dropped_too_long"] == sum(n + 1 > block for n in lengths) > 0
    assert meta["train"]["kept"] == len(kept)
    stream = np.concatenate([read_shard(p) for p in sorted((out / "train").glob("*.bin"))]).astype(np.int64)
    assert meta["train"]["shards"] > 1 and stream[0] == bpe.EOS_ID and len(stream) == meta["train"]["tokens"]
    starts = np.flatnonzero(stream == bpe.EOS_ID)
    docs = [bpe.decode(tok, stream[a + 1:b]) for a, b in zip(starts, list(starts[1:]) + [len(stream)])]
    assert sorted(docs) == sorted(kept)  # every kept story once, nothing else
    assert docs != [t for t in texts if t in kept]  # in a seeded random order
    train, val = data.load_train(out)
    row = train.batch([0])
    assert row.tokens.shape == (1, block) and row.packed  # rows of block_size tokens


def test_damaged_shards_are_refused_naming_the_file(tmp_path):
    files = _corpus_files(tmp_path, _synthetic_cfg(120, 30))
    tok_file = tmp_path / "tokenizer.json"
    call_stage("tinystories", "tokenizer:make_tokenizer", {"train": files["train"]}, {"tokenizer": tok_file},
               {"tokenizer": {"vocab_size": 1000, "file": None}})
    out = tmp_path / "data"
    data.make_data("ts", {"block_size": 256, "shard_tokens": 4000, "seed": 0, "vocab_size": 1000}, out, 1,
                   inputs={"train": files["train"], "validation": files["validation"], "tokenizer": tok_file})
    shard = sorted((out / "train").glob("*.bin"))[0]
    good = shard.read_bytes()
    shard.write_bytes(good[:-10])
    with pytest.raises(DataError, match=shard.name):
        data.load_train(out)
    arr = np.frombuffer(good[1024:], dtype="<u2").astype(np.int64)
    arr[5] = 1200
    write_shard(shard, arr)
    with pytest.raises(DataError, match=f"{shard.name} holds token id 1200"):
        data.load_train(out)
    shard.unlink()
    with pytest.raises(DataError, match="incomplete"):
        data.load_train(out)


def test_files_source_reads_txt_jsonl_and_parquet_alike(tmp_path):
    stories = synthetic.generate_stories(12, seed=1)
    txt = tmp_path / "s.txt"
    txt.write_text("\n<|endoftext|>\n".join(stories) + "\n<|endoftext|>\n")
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("".join(json.dumps({"story": s}) + "\n" for s in stories))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"story": stories}), tmp_path / "s.parquet")
    for path, field in ((txt, "text"), (jsonl, "story"), (tmp_path / "s.parquet", "story")):
        cfg = {"source": "files", "files": {"train": [str(path)], "validation": [str(path)], "text_field": field,
                                            "separator": "<|endoftext|>"}, "max_train": 5}
        got = corpus.load_corpus(cfg, "train")["text"]
        assert got == stories[:5], path.suffix
    blank = tmp_path / "b.txt"
    blank.write_text("\n\n".join(s.replace("\n", " ") for s in stories[:3]))
    cfg = {"source": "files", "files": {"train": [str(blank)], "validation": [], "text_field": "text",
                                        "separator": ""}}
    assert corpus.load_corpus(cfg, "train")["text"] == stories[:3]


def test_hub_source_asks_for_the_configured_dataset_and_split(monkeypatch):
    import datasets

    calls = []

    def fake_load(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_dict({"text": ["  One story. ", "", "Two."]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    cfg = {"source": "hub", "hub": {"path": "cyrilzhang/TinyStories2-ascii", "name": None, "revision": None,
                                    "train_split": "train", "validation_split": "validation",
                                    "text_field": "text"}}
    assert corpus.load_corpus(cfg, "validation")["text"] == ["One story.", "Two."]  # stripped, no empties
    assert calls == [("cyrilzhang/TinyStories2-ascii", None, "validation", None)]


def test_corpus_stats_count_words(tmp_path):
    files = _corpus_files(tmp_path, _synthetic_cfg(50, 10))
    stats = json.loads(files["stats"].read_text())
    texts = synthetic.generate_stories(50, seed=3)
    assert stats["train"]["stories"] == 50 and stats["train"]["words"] == sum(len(t.split()) for t in texts)
    assert stats["train"]["distinct_words"] == synthetic.corpus_stats(texts)["distinct_words"]


def test_readme_quotes_stories_the_grammar_generates():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    quotes = [" ".join(line.strip()[2:] for line in block.splitlines())
              for block in readme.split("\n\n") if block.strip().startswith("> Once")]
    assert len(quotes) == 2
    validation0 = synthetic.generate_stories(1, seed=0, split="validation")[0]
    train0 = synthetic.generate_stories(1, seed=0)[0]
    assert quotes[0] == validation0
    assert train0.startswith(quotes[1].split(" [...]")[0])
