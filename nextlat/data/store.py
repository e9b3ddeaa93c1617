"""The on-disk layout every benchmark dataset shares: ``train.parquet``, ``test.parquet``
and ``meta.json``, the latter written last and atomically so that a dataset whose
``meta.json`` exists is complete. Free of torch, so generator workers stay light."""
from __future__ import annotations

import json
import os
from pathlib import Path

SPLITS = ("train", "test")
META_FILE = "meta.json"


def write_meta(out_dir: str | Path, meta: dict) -> dict:
    """Write ``meta.json`` atomically; call it after the splits are written."""
    out = Path(out_dir)
    tmp = out / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / META_FILE)
    return meta


def write_parquet(path: str | Path, table) -> None:
    """Write a pyarrow table to ``path`` via a temp file and a rename, so the file is either
    complete or absent (a killed job never leaves a half-written table behind)."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def load_meta(data_dir: str | Path, name: str = "") -> dict:
    path = Path(data_dir) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the {name} dataset in {data_dir} was not generated "
                                f"or did not finish; (re)run its data rule")
    return json.loads(path.read_text())


def load_split(data_dir: str | Path, split: str, name: str = ""):
    """A split as a :class:`~nextlat.data.dataset.TokenDataset`, checked against meta.json."""
    from .dataset import read_token_table

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    meta = load_meta(data_dir, name)
    ds = read_token_table(Path(data_dir) / f"{split}.parquet")
    if ds.seq_len != meta["seq_len"]:
        raise ValueError(f"{split}.parquet in {data_dir} has rows of length {ds.seq_len}, "
                         f"but meta.json says {meta['seq_len']}")
    return ds
