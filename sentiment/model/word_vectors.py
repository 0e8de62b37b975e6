"""Pre-trained word vectors: start the embedding from GloVe, fastText or word2vec, and export our own.

    python -m sentiment.train --preset quick --vectors glove.6B.100d.txt.zip --freeze-embedding
    python -m sentiment.vectors export checkpoints/default.pt default.vec

A vectors file is streamed line by line, and only the rows of our vocabulary's tokens are kept, so a file of millions
of words costs the memory of our vocabulary. Text formats only: GloVe's `word v1 … vD` lines, and fastText's `.vec`
and word2vec's text format, which start with a `count dim` header; plain, `.gz`, `.bz2` or a `.zip` of one file.

Matching our tokens to the file's words, as far as it can: our tokens are lower-cased and split contractions as
NLTK does ("don't" → `do` `n't`). A token is looked up as it is; a cased file (fastText's) also answers for the
lower-cased form of its words; and a contraction's second half the file lacks (`n't`, `'re`, `'ve`, `'ll`, `'m`,
`'d`) takes the vector of the word it stands for (`not`, `are`, `have`, `will`, `am`, `would`). What was matched how
is counted and shown."""
from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.corpus import EncodedReviews, Stopped
from ..data.files import READ_ERRORS, DataError, control_share, open_compressed, unreadable
from ..data.preprocessing import PAD, PAD_ID, Vocab
from .checkpoint import load_checkpoint

READABLE = ("gzip", "bzip2", "zip")


MAX_DIM = 4096  # the largest embedding size a model may have


MAX_LINE_BYTES = 64 * MAX_DIM  # a row of MAX_DIM numbers, each written with plenty of digits


# A contraction's second half, as NLTK splits it off, and the word it stands for.
CONTRACTIONS = {"n't": "not", "'re": "are", "'ve": "have", "'ll": "will", "'m": "am", "'d": "would"}


@dataclass
class WordVectors:
    """The rows of a vectors file that our vocabulary uses."""

    path: str
    dim: int
    ids: np.ndarray  # (F,) the vocabulary ids found
    rows: np.ndarray  # (F, dim) float32, their vectors
    read: int  # vectors in the file
    matched: dict[str, int] = field(default_factory=dict)  # how the tokens were found: exact, lower-cased, contraction

    def coverage(self, vocab: Vocab, reviews: EncodedReviews | None = None) -> str:
        """A sentence on what was found: tokens of the vocabulary and, given the training reviews, the share of their
        running tokens those make up."""
        found = len(self.ids)
        text = (f"word vectors {Path(self.path).name} ({self.read:,} × {self.dim}): {found:,} of the vocabulary's "
                f"{len(vocab) - 1:,} tokens found")
        if reviews is not None:
            counts = token_counts(reviews, len(vocab))
            total = counts[1:].sum()  # every token but _PAD
            text += f", {counts[self.ids].sum() / max(1, total):.1%} of the training text's tokens"
        how = ", ".join(f"{n:,} {kind}" for kind, n in self.matched.items() if n)
        return text + (f" ({how})" if how else "")

    def copy_into(self, embedding: torch.nn.Embedding) -> None:
        """Set the found tokens' rows of `embedding`; the others keep their initial values."""
        if embedding.embedding_dim != self.dim:
            raise DataError(f"the embedding has {embedding.embedding_dim} numbers per token and the vectors {self.dim}")
        with torch.no_grad():
            embedding.weight[torch.from_numpy(self.ids)] = torch.from_numpy(self.rows).to(embedding.weight)


def token_counts(reviews: EncodedReviews, size: int, chunk: int = 10_000) -> np.ndarray:
    """(size,) how often each vocabulary id occurs in the reviews (read a chunk of reviews at a time)."""
    counts = np.zeros(size, dtype=np.int64)
    for first in range(0, len(reviews), chunk):
        part = reviews.subset(np.arange(first, min(first + chunk, len(reviews))))
        counts += np.bincount(part.flat_ids(), minlength=size)
    return counts


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, each decoded as UTF-8 on its own so that a bad byte is named by its line."""
    with open_compressed(path, READABLE) as stream:
        head = stream.peek(4096)[:4096]
        if b"\x00" in head or control_share(head) > 0.01:  # the review files' rule
            raise DataError(f"{path.name}: a binary file; word vectors are read from text (a word2vec .bin: save it "
                            "with binary=False)")
        number = 0
        while raw := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{path.name}: line {number:,} is longer than {MAX_LINE_BYTES:,} bytes: not a vectors "
                                f"file (at most {MAX_DIM} numbers a word)")
            try:
                yield number, raw.decode("utf-8").rstrip()
            except UnicodeDecodeError:
                raise DataError(f"{path.name}: line {number:,} is not UTF-8 text") from None


def _header(line: str) -> tuple[int, int] | None:
    """(count, dim) of a fastText/word2vec header line, or None for a first vector."""
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _lookups(vocab: Vocab) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Our tokens by themselves (not _PAD), and the words that stand in for a missing contraction half."""
    exact = {token: i for i, token in enumerate(vocab.itos) if token != PAD}
    standing_in: dict[str, list[int]] = {}
    for half, word in CONTRACTIONS.items():
        if half in exact:
            standing_in.setdefault(word, []).append(exact[half])
    return exact, standing_in


def read_vectors(path: str | Path, vocab: Vocab, stop: Callable[[], bool] | None = None) -> WordVectors:
    """The vectors of `vocab`'s tokens in the file at `path`, matched as the module says. A file that is not one
    (binary, ragged, NaN, a header that lies, no token of ours, a damaged archive) is a DataError that says so."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return _read_vectors(path, vocab, stop)
    except (*READ_ERRORS, RuntimeError) as e:  # RuntimeError: an encrypted zip
        raise unreadable(path, e) from None


def vector_size(path: str | Path) -> int:
    """The number of values per word in a vectors file, from its header or first line."""
    path = Path(path)
    try:
        first = next(_lines(path), (0, ""))[1]
    except (*READ_ERRORS, RuntimeError) as e:
        raise unreadable(path, e) from None
    header = _header(first)
    return header[1] if header else len(first.split(" ")) - 1


def _read_vectors(path: Path, vocab: Vocab, stop: Callable[[], bool] | None) -> WordVectors:
    exact_ids, standing_in = _lookups(vocab)
    found: dict[str, dict[int, np.ndarray]] = {"exact": {}, "lower-cased": {}, "by contraction": {}}
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(f"{path.name}: the file is empty")
    header = _header(first[1])
    dim = header[1] if header else len(first[1].split(" ")) - 1
    if not 1 <= dim <= MAX_DIM:
        raise DataError(f"{path.name}: vectors of {dim} numbers; an embedding has 1 to {MAX_DIM}")
    said = "its header says" if header else "its first line has"
    rows = lines if header else itertools.chain([first], lines)
    read = 0
    for number, line in rows:
        if not line:
            continue
        if stop is not None and number % 10_000 == 0 and stop():
            raise Stopped(f"{path.name}: stopped while reading the word vectors")
        word, vector = _parse(line, dim, f"{path.name}: line {number:,}", said)
        read += 1
        if word in exact_ids:
            found["exact"].setdefault(exact_ids[word], vector)
        lowered = word.lower()
        if lowered != word and lowered in exact_ids:
            found["lower-cased"].setdefault(exact_ids[lowered], vector)
        for i in standing_in.get(word, ()):
            found["by contraction"].setdefault(i, vector)
    if header and read != header[0]:
        raise DataError(f"{path.name}: its header says {header[0]:,} vectors; the file holds {read:,}")
    chosen: dict[int, np.ndarray] = {}
    matched = {}
    for kind, vectors in found.items():  # exact first, then lower-cased, then a contraction's word
        new = {i: v for i, v in vectors.items() if i not in chosen}
        chosen.update(new)
        matched[kind] = len(new)
    if not chosen:
        raise DataError(f"{path.name}: none of the vocabulary's {len(exact_ids):,} tokens is in the file "
                        f"({read:,} words): is it a file of English word vectors?")
    ids = np.array(sorted(chosen), dtype=np.int64)
    return WordVectors(path=str(path), dim=dim, ids=ids, rows=np.stack([chosen[i] for i in ids]), read=read,
                       matched=matched)


def _parse(line: str, dim: int, where: str, said: str) -> tuple[str, np.ndarray]:
    """(word, vector) of one line; a word may hold spaces (GloVe's larger files have a few such)."""
    parts = line.split(" ")
    numbers = parts[-dim:]
    if len(parts) < dim + 1 or (len(parts) > dim + 1 and _is_number(parts[-dim - 1])):
        count = sum(_is_number(p) for p in parts[1:])
        raise DataError(f"{where} has {count} numbers after its word; {said} {dim}")
    try:
        vector = np.array(numbers, dtype=np.float32)
    except ValueError:
        bad = next(p for p in numbers if not _is_number(p))
        raise DataError(f"{where}: {bad[:20]!r} is not a number") from None
    word = " ".join(parts[:-dim])
    if not np.isfinite(vector).all():
        raise DataError(f"{where}: the vector of {word[:40]!r} holds NaN or an infinity")
    return word, vector


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export(checkpoint_path: str | Path, out: str | Path) -> int:
    """Write a checkpoint's embedding in the fastText text format (`count dim`, then `token v1 … vD` per token,
    _PAD left out), each number with the digits that read back to the same float32; written atomically. Returns the
    number of vectors written."""
    checkpoint = load_checkpoint(checkpoint_path)
    weights = checkpoint.state_dict["embedding.weight"].float().numpy()  # (V, E)
    tokens = [(i, token) for i, token in enumerate(checkpoint.vocab.itos)
              if i != PAD_ID and token and not any(c.isspace() for c in token)]
    out = Path(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(f"{len(tokens)} {weights.shape[1]}\n")
            for i, token in tokens:
                f.write(token + " " + " ".join(format(float(v), ".9g") for v in weights[i]) + "\n")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(tokens)
