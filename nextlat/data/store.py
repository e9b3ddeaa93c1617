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


def read_token_table(path: str | Path, packed: bool = False, pad_id: int | None = None):
    """A parquet token table as a :class:`~nextlat.data.dataset.TokenDataset`."""
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401  (pa.compute)
    import pyarrow.parquet as pq

    from .dataset import TokenDataset

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} does not exist; generate it first (snakemake or `nextlat data`)")
    table = pq.read_table(path, columns=["tokens", "prompt_len"])
    tokens = table.column("tokens").combine_chunks()
    lengths = pa.compute.list_value_length(tokens).to_numpy(zero_copy_only=False)
    flat = tokens.flatten().to_numpy(zero_copy_only=False)
    return TokenDataset.from_flat(flat, lengths, table.column("prompt_len").to_numpy(), packed, pad_id)


def load_meta(data_dir: str | Path, name: str = "") -> dict:
    path = Path(data_dir) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the {name} dataset in {data_dir} was not generated "
                                f"or did not finish; (re)run its data rule")
    return json.loads(path.read_text())


def load_split(data_dir: str | Path, split: str, name: str = ""):
    """A split as a :class:`~nextlat.data.dataset.TokenDataset`, checked against meta.json."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    meta = load_meta(data_dir, name)
    ds = read_token_table(Path(data_dir) / f"{split}.parquet")
    if ds.seq_len != meta["seq_len"]:
        raise ValueError(f"{split}.parquet in {data_dir} has rows of length {ds.seq_len}, "
                         f"but meta.json says {meta['seq_len']}")
    return ds
