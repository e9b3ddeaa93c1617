"""Which Hugging Face ``datasets`` loader reads a set of local text files.

The corpus sources of the language benchmarks accept ``.txt``, ``.jsonl``/``.json`` (also
``.jsonl.gz``) and ``.parquet`` files, one kind per list: ``datasets.load_dataset(kind,
data_files=...)`` reads them. Config checks and corpus stages both ask here, so they accept
and refuse the same files.
"""
from __future__ import annotations

from collections.abc import Sequence

_SUFFIXES = ((".jsonl.gz", "json"), (".jsonl", "json"), (".json", "json"), (".parquet", "parquet"), (".txt", "text"))


def file_kind(paths: Sequence[str], key: str) -> str:
    """The ``datasets`` builder (``text``, ``json`` or ``parquet``) of ``paths``; ValueError
    naming the config ``key`` for an unsupported file or a mix of kinds."""
    kinds = set()
    for path in map(str, paths):
        kind = next((k for suffix, k in _SUFFIXES if path.lower().endswith(suffix)), None)
        if kind is None:
            raise ValueError(f"{key}: {path}: unsupported file (use .txt, .jsonl, .json or .parquet)")
        kinds.add(kind)
    if len(kinds) != 1:
        raise ValueError(f"{key} mixes file kinds {sorted(kinds)}" if kinds else f"{key} lists no file")
    return kinds.pop()
