"""The story tokenizer: a byte-level BPE trained with Hugging Face ``tokenizers``, as the one the
paper's code ships for TinyStories (1,000 ids, ``<|pad|>`` = 0, ``<|eos|>`` = 1, ByteLevel
pre-tokenization with a prefix space, then every digit its own token, ByteLevel decoding).

One difference, on purpose: the initial alphabet is all 256 byte symbols, not only the
printable ASCII the original's merges start from, so that *every* story round-trips, whatever
characters a local corpus holds (the original, lacking byte fallback, loses non-ASCII text).
A given ``tokenizer.json`` (the original's, say) is used as it is after checking that its
pad and EOS ids are 0 and 1.

The tokenizer stage trains on the training split only and writes ``tokenizer.json`` once per
corpus; the data stage and every run read that one file.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from ...io import atomic_path

log = logging.getLogger(__name__)

PAD, EOS = "<|pad|>", "<|eos|>"
PAD_ID, EOS_ID = 0, 1


def new_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.ByteLevel(add_prefix_space=True),
                                                 pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.ByteLevel()
    return tok


def train_bpe(batches, vocab_size: int):
    """A BPE of ``vocab_size`` ids (pad 0, EOS 1) trained on an iterable of lists of stories."""
    from tokenizers import pre_tokenizers, trainers

    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(batches, trainer)
    check(tok, "the trained tokenizer")
    return tok


def check(tok, what: str) -> None:
    if tok.token_to_id(PAD) != PAD_ID or tok.token_to_id(EOS) != EOS_ID:
        raise ValueError(f"{what} must map {PAD} to {PAD_ID} and {EOS} to {EOS_ID}, got "
                         f"{tok.token_to_id(PAD)} and {tok.token_to_id(EOS)}")


def load(path: str | Path):
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer {path} does not exist")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:
        raise ValueError(f"tokenizer {path} cannot be read ({err})") from None
    check(tok, f"tokenizer {path}")
    return tok


def vocab_size_of(path: str | Path) -> int:
    return load(path).get_vocab_size()


def decode(tok, ids) -> str:
    """Token ids -> text, without the one space the ByteLevel prefix adds to every story."""
    text = tok.decode([int(i) for i in ids], skip_special_tokens=True)
    return text[1:] if text.startswith(" ") else text


def make_tokenizer(inputs: dict, outputs: dict, params: dict) -> None:
    """Tokenizer stage: train on the corpus's training split, or copy the given file."""
    from .corpus import TEXT, read_split

    cfg = params["tokenizer"]
    start = time.perf_counter()
    if cfg.get("file"):
        load(cfg["file"])  # refuse a broken or mis-numbered file before copying it
        with atomic_path(outputs["tokenizer"]) as tmp:
            shutil.copyfile(cfg["file"], tmp)
        log.info("using the given tokenizer %s", cfg["file"])
        return
    train = read_split(inputs["train"])
    stories = train[TEXT]
    tok = train_bpe((stories[i:i + 10_000] for i in range(0, len(stories), 10_000)), cfg["vocab_size"])
    if tok.get_vocab_size() != cfg["vocab_size"]:
        log.warning("the corpus has too few distinct pieces for %d ids: the BPE has %d", cfg["vocab_size"],
                    tok.get_vocab_size())
    with atomic_path(outputs["tokenizer"]) as tmp:
        tok.save(str(tmp))
    log.info("trained a %d-id BPE on %d stories in %.1f s -> %s", tok.get_vocab_size(), len(stories),
             time.perf_counter() - start, outputs["tokenizer"])
