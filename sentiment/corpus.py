"""A review file tokenized once, cached on disk, and encoded against any vocabulary.

Tokenizing is the slow part of preprocessing (NLTK's rules are dozens of regular expressions per review),
and it does not depend on the vocabulary or on `max_len`. So a file is tokenized once into ids over its own
lexicon (every distinct token), saved as flat numpy arrays, and reused while the file, the row limit and
`PREPROCESSING_VERSION` stay the same. Vocabularies and model inputs are then cheap array lookups.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import nltk
import numpy as np
import torch

from .data import ReadReport, load_reviews
from .preprocessing import PAD_ID, PREPROCESSING_VERSION, UNK_ID, Vocab, tokenize_review

_CHUNK = 2000
_PARALLEL_FROM = 8000  # below this many reviews, starting worker processes costs more than it saves


def cache_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_CACHE_DIR", Path.home() / ".cache" / "lstm-sentiment"))


@dataclass
class EncodedReviews:
    """Model-ready reviews: ids of the first `max_len` tokens, flat, with offsets; label 1 = positive."""

    ids: np.ndarray  # (total_tokens,) int64
    offsets: np.ndarray  # (N + 1,) int64
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def review(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ids (B, T) with T the longest review in the batch, lengths (B,), labels (B,)."""
        lengths = self.lengths[rows]
        ids = np.full((len(rows), max(1, int(lengths.max()))), PAD_ID, dtype=np.int64)
        for r, i in enumerate(rows):
            ids[r, : lengths[r]] = self.review(i)
        # A review with no tokens is scored as a single _PAD step rather than as nothing at all.
        lengths = np.maximum(lengths, 1)
        return torch.from_numpy(ids), torch.from_numpy(lengths), torch.from_numpy(self.labels[rows])


def encode_texts(texts: list[str], vocab: Vocab, max_len: int) -> EncodedReviews:
    """Encode raw texts exactly as the training data was (used for prediction)."""
    encoded = [vocab.encode(tokenize_review(t, max_tokens=max_len)) for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    ids = np.fromiter((i for e in encoded for i in e), dtype=np.int64, count=int(offsets[-1]))
    return EncodedReviews(ids, offsets, np.zeros(len(encoded), dtype=np.int64))


@dataclass
class TokenizedCorpus:
    """Every review of a file as token ids over the file's own lexicon."""

    lexicon: list[str]
    token_ids: np.ndarray  # (total_tokens,) int32, ids into lexicon
    offsets: np.ndarray  # (N + 1,) int64
    labels: np.ndarray  # (N,) int64
    report: ReadReport
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def tokens(self, i: int) -> list[str]:
        return [self.lexicon[t] for t in self.token_ids[self.offsets[i] : self.offsets[i + 1]]]

    def _row_token_ids(self, rows: np.ndarray, max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        if max_len is not None:
            lengths = np.minimum(lengths, max_len)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Position of each output token in token_ids: its review's start plus its index within the review.
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
        return self.token_ids[np.repeat(starts, lengths) + within], offsets

    def build_vocab(self, rows: np.ndarray, min_freq: int = 2, max_size: int | None = None) -> Vocab:
        """Vocabulary of the tokens in `rows` (the training split only), counted over whole reviews."""
        ids, _ = self._row_token_ids(rows)
        counts = np.bincount(ids, minlength=len(self.lexicon))
        seen = np.flatnonzero(counts)
        return Vocab.from_counts({self.lexicon[i]: int(counts[i]) for i in seen}, min_freq, max_size)

    def encode(self, vocab: Vocab, rows: np.ndarray, max_len: int) -> EncodedReviews:
        lookup = np.array([vocab.stoi.get(t, UNK_ID) for t in self.lexicon], dtype=np.int64)
        ids, offsets = self._row_token_ids(rows, max_len)
        return EncodedReviews(lookup[ids], offsets, self.labels[rows])


def _tokenize_chunk(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The chunk's reviews as ids over the chunk's own lexicon: (lexicon, ids (tokens,) int32, lengths (reviews,)).
    Arrays travel back from a worker far cheaper than lists of strings, and the merge only maps each lexicon."""
    lexicon: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for r, text in enumerate(texts):
        tokens = tokenize_review(text)
        ids.extend(lexicon.setdefault(t, len(lexicon)) for t in tokens)
        lengths[r] = len(tokens)
    return list(lexicon), np.asarray(ids, dtype=np.int32), lengths


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _cache_path(path: Path, limit: int | None) -> Path:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{limit}|{PREPROCESSING_VERSION}|{nltk.__version__}"
    return cache_dir() / f"corpus-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _save(corpus: TokenizedCorpus, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                lexicon=np.frombuffer("\n".join(corpus.lexicon).encode("utf-8", "surrogatepass"), dtype=np.uint8),
                token_ids=corpus.token_ids,
                offsets=corpus.offsets,
                labels=corpus.labels,
                report=np.frombuffer(json.dumps(asdict(corpus.report)).encode(), dtype=np.uint8),
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(source: Path) -> TokenizedCorpus:
    with np.load(source) as z:
        return TokenizedCorpus(
            lexicon=z["lexicon"].tobytes().decode("utf-8", "surrogatepass").split("\n"),
            token_ids=z["token_ids"],
            offsets=z["offsets"],
            labels=z["labels"],
            report=ReadReport(**json.loads(z["report"].tobytes())),
            from_cache=True,
        )


def tokenize_corpus(
    path: str | Path,
    limit: int | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TokenizedCorpus:
    """Read and tokenize up to `limit` reviews of a file, or load the cached result of an earlier run.

    `progress(done, total)` is called after each chunk of reviews. Large files are tokenized in worker
    processes (`workers`, default: one per core).
    """
    path = Path(path)
    target = _cache_path(path, limit) if use_cache and path.is_file() else None
    if target is not None and target.exists():
        try:
            return _load(target)
        except (OSError, ValueError, KeyError, TypeError):
            target.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted

    texts, labels, report = load_reviews(path, limit)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    chunks = _chunks(texts, _CHUNK)
    lexicon: dict[str, int] = {}  # first appearance order, chunk after chunk: the same as a serial pass
    id_parts, length_parts = [np.zeros(0, dtype=np.int32)], [np.zeros(0, dtype=np.int64)]
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(texts) >= _PARALLEL_FROM else None
    try:
        for chunk_lexicon, ids, lengths in (pool.map(_tokenize_chunk, chunks) if pool else map(_tokenize_chunk, chunks)):
            to_global = np.fromiter((lexicon.setdefault(t, len(lexicon)) for t in chunk_lexicon), dtype=np.int32,
                                    count=len(chunk_lexicon))
            id_parts.append(to_global[ids])
            length_parts.append(lengths)
            if progress:
                progress(sum(map(len, length_parts)), len(texts))
    finally:
        if pool:
            pool.shutdown()
    del texts
    offsets = np.zeros(sum(map(len, length_parts)) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(length_parts), out=offsets[1:])
    corpus = TokenizedCorpus(
        lexicon=list(lexicon),
        token_ids=np.concatenate(id_parts),
        offsets=offsets,
        labels=labels,
        report=report,
    )
    if target is not None:
        try:
            _save(corpus, target)
        except OSError:
            pass  # a read-only home directory only costs the next run its cache
    return corpus
