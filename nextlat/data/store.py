"""The on-disk layout every benchmark dataset shares: ``train.parquet``, ``test.parquet``
and ``meta.json``, the latter written last and atomically so that a dataset whose
``meta.json`` exists is complete; and the parquet token tables themselves (a ``tokens``
list column and a ``prompt_len`` column: tokens before the first supervised target).

Free of torch at import, so generator workers stay light: only reading a table back as a
:class:`~nextlat.data.dataset.TokenDataset` imports :mod:`nextlat.data.dataset` (lazily).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_path, write_json

SPLITS = ("train", "test")
META_FILE = "meta.json"


class DataError(ValueError):
    """A dataset file that is damaged or disagrees with its meta.json (the message names it)."""


REGENERATE = "regenerate the dataset (delete the folder and rerun its data rule or `nextlat data`)"


def read_parquet(path: str | Path, columns: list[str] | None = None):
    """``pq.read_table`` that names the file when it is truncated or not parquet at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {path} does not exist; generate it first (snakemake or `nextlat data`)")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path} is damaged or not a parquet file ({err}); {REGENERATE}") from None


def check_tokens(path: str | Path, flat, vocab_size: int) -> None:
    """Every token id of a file lies in 0..vocab_size-1 (caught when the data is loaded,
    not as an index error deep inside the model)."""
    import numpy as np

    flat = np.asarray(flat)
    if flat.size and (flat.min() < 0 or flat.max() >= vocab_size):
        bad = int(flat.max()) if flat.max() >= vocab_size else int(flat.min())
        raise DataError(f"{path} holds token id {bad}, outside the vocabulary 0..{vocab_size - 1} of its "
                        f"meta.json; {REGENERATE}")


def write_meta(out_dir: str | Path, meta: dict) -> dict:
    """Write ``meta.json`` atomically; call it after the splits are written."""
    write_json(Path(out_dir) / META_FILE, meta)
    return meta


def write_parquet(path: str | Path, table) -> None:
    """Write a pyarrow table to ``path`` atomically (:func:`nextlat.io.atomic_path`), so the
    file is either complete or absent (a killed job never leaves a half-written table behind)."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_token_table(path: str | Path, rows: list[list[int]], prompt_lens: list[int],
                      extra: dict[str, list] | None = None) -> None:
    """Write sequences (and ``extra`` columns) as a parquet token table, atomically."""
    import pyarrow as pa

    write_parquet(path, pa.table({"tokens": pa.array(rows, type=pa.list_(pa.int32())),
                                  "prompt_len": pa.array(prompt_lens, type=pa.int32()), **(extra or {})}))


def read_token_table(path: str | Path, packed: bool = False, pad_id: int | None = None,
                     vocab_size: int | None = None):
    """A parquet token table as a :class:`~nextlat.data.dataset.TokenDataset`."""
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401  (pa.compute)

    from .dataset import TokenDataset

    table = read_parquet(path, columns=["tokens", "prompt_len"])
    tokens = table.column("tokens").combine_chunks()
    lengths = pa.compute.list_value_length(tokens).to_numpy(zero_copy_only=False)
    flat = tokens.flatten().to_numpy(zero_copy_only=False)
    if vocab_size is not None:
        check_tokens(path, flat, vocab_size)
    return TokenDataset.from_flat(flat, lengths, table.column("prompt_len").to_numpy(), packed, pad_id)


def load_meta(data_dir: str | Path, name: str = "") -> dict:
    path = Path(data_dir) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the {name} dataset in {data_dir} was not generated "
                                f"or did not finish; (re)run its data rule")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); {REGENERATE}") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} does not hold a JSON object; {REGENERATE}")
    return meta


def load_split(data_dir: str | Path, split: str, name: str = ""):
    """A split as a :class:`~nextlat.data.dataset.TokenDataset`, checked against meta.json."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    meta = load_meta(data_dir, name)
    path = Path(data_dir) / f"{split}.parquet"
    ds = read_token_table(path, vocab_size=meta.get("vocab_size"))
    if ds.seq_len != meta["seq_len"]:
        raise DataError(f"{path} has rows of length {ds.seq_len}, but meta.json says {meta['seq_len']}; "
                        f"{REGENERATE}")
    want = meta.get(f"n_{split}")
    if want is not None and len(ds) != want:
        raise DataError(f"{path} has {len(ds)} rows, but meta.json says n_{split}={want}; {REGENERATE}")
    return ds
