"""Damaged or incomplete datasets are refused when loaded, with the file named: a missing
part file, a truncated parquet, a corrupt meta.json, a token outside the vocabulary, a
split with fewer rows than meta.json says. Every registered benchmark, smoke scale."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nextlat import benchmarks
from nextlat import config as nlconfig
from nextlat.data.store import DataError
from nextlat.stages.data import data_config, make_data

ROOT = Path(__file__).resolve().parents[1]
CFG = nlconfig.load(ROOT / "config.yaml", "smoke")


# Benchmarks whose splits are parquet token tables; token-shard datasets (whose data stage
# needs the files of their own earlier rules: a corpus, a tokenizer, tokenization jobs) have
# their own damage tests in tests/benchmarks/.
PARQUET = [n for n in benchmarks.names()
           if not benchmarks.get(n).data_inputs(CFG["benchmarks"][n], CFG["benchmarks"][n]["tasks"][0])]


@pytest.fixture(scope="module", params=PARQUET)
def dataset(request, tmp_path_factory):
    name = request.param
    bench = CFG["benchmarks"][name]
    out = tmp_path_factory.mktemp(name) / "data"
    make_data(name, bench["tasks"][0], data_config(name, bench), out, workers=1)
    return name, out


@pytest.fixture
def copy(dataset, tmp_path):
    name, out = dataset
    dst = tmp_path / "data"
    shutil.copytree(out, dst)
    return name, dst


def load(name, data_dir):
    return benchmarks.get(name).load_train(data_dir)


def a_training_file(data_dir: Path) -> Path:
    """The first parquet file the training split is read from."""
    return data_dir / "train.parquet" if (data_dir / "train.parquet").exists() else \
        sorted((data_dir / "train").glob("*.parquet"))[0]


def test_intact_data_loads(copy):
    train, val = load(*copy)
    assert len(train) > 0 and len(val) > 0


def test_truncated_parquet_is_named(copy):
    name, d = copy
    f = a_training_file(d)
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(DataError, match=rf"{f.name}.*damaged"):
        load(name, d)


def test_corrupt_meta_is_named(copy):
    name, d = copy
    (d / "meta.json").write_text('{"vocab_size": 1')
    with pytest.raises(DataError, match=r"meta\.json is not valid JSON"):
        load(name, d)


def test_token_outside_the_vocabulary_is_caught_at_load(copy):
    """The first id past the vocabulary, in the token column (``inputs`` for tagged rows)."""
    name, d = copy
    f = a_training_file(d)
    table = pq.read_table(f)
    column = "tokens" if "tokens" in table.column_names else "inputs"
    rows = table.column(column).to_pylist()
    rows[0][-1] = json.loads((d / "meta.json").read_text())["vocab_size"]
    pq.write_table(table.set_column(table.schema.get_field_index(column), column,
                                    pa.array(rows, type=table.schema.field(column).type)), f)
    with pytest.raises(DataError, match="outside the vocabulary"):
        load(name, d)


def test_missing_rows_or_parts_are_caught(copy):
    name, d = copy
    parts = sorted((d / "train").glob("part-*.parquet")) if (d / "train").is_dir() else []
    if len(parts) > 1:  # a split stored as several part files: delete one in the middle
        parts[1].unlink()
        with pytest.raises(DataError, match=rf"missing: \['{parts[1].name}'\]"):
            load(name, d)
        return
    f = a_training_file(d)
    table = pq.read_table(f)
    pq.write_table(table.slice(0, table.num_rows - 1), f)
    with pytest.raises(DataError, match="rows|documents"):
        load(name, d)
