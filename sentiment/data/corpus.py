"""A review file tokenized once, cached on disk, and encoded against any vocabulary.

Tokenizing is the slow part of preprocessing (NLTK's rules are dozens of regular expressions per review),
and it does not depend on the vocabulary or on `max_len`. So a file is tokenized once into ids over its own
lexicon (every distinct token) and reused while the file, the row limit and `PREPROCESSING_VERSION` stay the same.

The file is streamed: chunks of reviews go to worker processes, a few at a time, and their token ids are
appended to a flat int32 file on disk. Nothing holds all reviews as Python strings, so the full 3.6M-review
data set tokenizes in bounded memory. The cache is a folder:

    corpus-<key>/token_ids.i32   every token id, review after review (read back memory-mapped)
                 offsets.npy     review i is token_ids[offsets[i]:offsets[i + 1]]
                 labels.npy      1 = positive
                 lexicon.txt     token id → token, one per line
                 manifest.json   source file, size, mtime, row limit, preprocessing and NLTK versions, counts

Vocabularies and model inputs are then array lookups on the memory-mapped ids.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import chain, islice
from pathlib import Path

import nltk
import numpy as np
import torch

from .files import DataError, ReadReport, read_reviews, require_reviews
from .preprocessing import PAD_ID, PREPROCESSING_VERSION, UNK_ID, Vocab, tokenize_review
from .sets import data_files, source_name

_CHUNK = 2000
_PARALLEL_FROM = 3000  # fewer reviews tokenize faster in this process than through worker processes
_CACHE_FORMAT = 2
SENTENCE_ENDS = (".", "!", "?", "...", ":")
_VOCAB_ROWS = 50_000  # reviews counted at a time when building a vocabulary: bounded memory on any corpus


class Stopped(Exception):
    """Tokenizing was asked to stop (the Stop button, a time limit) before it finished; nothing was cached."""


def cache_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_CACHE_DIR", Path.home() / ".cache" / "lstm-sentiment"))


@dataclass
class EncodedReviews:
    """Model-ready reviews: the vocabulary ids of each review's first `max_len` tokens; label 1 = positive.

    A view, not a copy: review i is `token_ids[starts[i] : starts[i] + lengths[i]]` mapped through `lookup` (token
    id → vocabulary id) when a batch is made, so a split of a memory-mapped corpus costs no memory up front."""

    token_ids: np.ndarray  # flat, any integer type, possibly a np.memmap
    starts: np.ndarray  # (N,) int64
    lengths: np.ndarray  # (N,) int64, already cut at max_len
    labels: np.ndarray  # (N,) int64
    lookup: np.ndarray | None = None  # None: token_ids already are vocabulary ids

    def __len__(self) -> int:
        return len(self.labels)

    def ids_at(self, positions: np.ndarray) -> np.ndarray:
        """The vocabulary ids at these positions of the flat token ids."""
        ids = self.token_ids[positions]
        return (self.lookup[ids] if self.lookup is not None else ids).astype(np.int64, copy=False)

    def review(self, i: int) -> np.ndarray:
        return self.ids_at(np.arange(self.starts[i], self.starts[i] + self.lengths[i]))

    def flat_ids(self) -> np.ndarray:
        """Every review's vocabulary ids, the reviews one after another."""
        offsets = np.cumsum(self.lengths) - self.lengths  # where each review starts among all their ids
        return self.ids_at(np.repeat(self.starts - offsets, self.lengths) + np.arange(self.lengths.sum()))

    def subset(self, rows: np.ndarray) -> EncodedReviews:
        """A view of some of these reviews (a split, a batch), still without copying ids."""
        return EncodedReviews(token_ids=self.token_ids, starts=self.starts[rows], lengths=self.lengths[rows],
                              labels=self.labels[rows], lookup=self.lookup)

    def extended(self, other: EncodedReviews) -> EncodedReviews:
        """These reviews, then `other`'s: a view over the same token ids and lookup."""
        if other.token_ids is not self.token_ids or other.lookup is not self.lookup:
            raise ValueError("only views of the same corpus can be joined")
        return EncodedReviews(token_ids=self.token_ids, starts=np.concatenate([self.starts, other.starts]),
                              lengths=np.concatenate([self.lengths, other.lengths]),
                              labels=np.concatenate([self.labels, other.labels]), lookup=self.lookup)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ids (B, T) with T the longest review in the batch, lengths (B,), labels (B,)."""
        lengths = self.lengths[rows]
        T = max(1, int(lengths.max()))
        within = np.arange(T)  # (T,)
        real = within[None, :] < lengths[:, None]  # (B, T)
        ids = np.full((len(rows), T), PAD_ID, dtype=np.int64)
        ids[real] = self.ids_at((self.starts[rows][:, None] + within[None, :])[real])
        # A review with no tokens is scored as a single _PAD step rather than as nothing at all.
        lengths = np.maximum(lengths, 1)
        return torch.from_numpy(ids), torch.from_numpy(lengths), torch.from_numpy(self.labels[rows])


def encode_texts(texts: list[str], vocab: Vocab, max_len: int) -> EncodedReviews:
    """Encode raw texts exactly as the training data was (used for prediction)."""
    encoded = [vocab.encode(tokenize_review(t, max_tokens=max_len)) for t in texts]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = np.fromiter((i for e in encoded for i in e), dtype=np.int64, count=int(lengths.sum()))
    return EncodedReviews(token_ids=ids, starts=starts, lengths=lengths, labels=np.zeros(len(encoded), dtype=np.int64))


@dataclass
class TokenizedCorpus:
    """Every review of a file as token ids over the file's own lexicon."""

    lexicon: list[str]
    token_ids: np.ndarray  # (total_tokens,) int32, ids into lexicon
    offsets: np.ndarray  # (N + 1,) int64
    labels: np.ndarray  # (N,) int64
    report: ReadReport
    from_cache: bool = False
    # The files read, one source each, and how many reviews came from each, in order: source k's reviews are the
    # sizes[k] rows after those of the sources before it.
    sources: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources, self.sizes = [source_name(Path(self.report.source))], [len(self.labels)]

    def __len__(self) -> int:
        return len(self.labels)

    def source_of(self, rows: np.ndarray) -> np.ndarray:
        """The index into `sources` of each row's source."""
        return np.searchsorted(np.cumsum(self.sizes), rows, side="right")

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
        """Vocabulary of the tokens in `rows` (the training split only), counted over whole reviews, a block of
        rows at a time."""
        counts = np.zeros(len(self.lexicon), dtype=np.int64)
        for start in range(0, len(rows), _VOCAB_ROWS):
            block = np.sort(rows[start : start + _VOCAB_ROWS])  # sorted: the memory map is read forwards
            counts += np.bincount(self._row_token_ids(block)[0], minlength=len(self.lexicon))
        seen = np.flatnonzero(counts)
        return Vocab.from_counts({self.lexicon[i]: int(counts[i]) for i in seen}, min_freq, max_size)

    def titles(self, rows: np.ndarray, within: int = 32) -> np.ndarray:
        """Length in tokens of each review's title, the text before its first ':' (Amazon reviews read
        "title: text"); 0 where no ':' comes within the first `within` tokens."""
        if ":" not in self.lexicon:
            return np.zeros(len(rows), dtype=np.int64)
        colon = self.lexicon.index(":")
        lengths = np.minimum(self.offsets[rows + 1] - self.offsets[rows], within)  # (N,)
        steps = np.arange(within)  # (W,)
        positions = np.minimum(self.offsets[rows][:, None] + steps, len(self.token_ids) - 1)  # (N, W)
        is_colon = (self.token_ids[positions] == colon) & (steps < lengths[:, None])
        return np.where(is_colon.any(axis=1), is_colon.argmax(axis=1), 0)

    def sentences(self, rows: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every sentence of at least two tokens within each review's first `max_len` tokens, the title included
        (a sentence ends at '.', '!', '?', '...', ':' or the review's end): (starts, lengths, review), where
        `review` indexes `rows` and comes in order."""
        ends = np.flatnonzero(np.isin(self.lexicon, SENTENCE_ENDS))
        lengths = np.minimum(self.offsets[rows + 1] - self.offsets[rows], max_len)  # (N,)
        review = np.repeat(np.arange(len(rows)), lengths)  # (tokens,)
        within = np.arange(len(review)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = np.repeat(self.offsets[rows], lengths) + within
        last = np.flatnonzero(np.isin(self.token_ids[positions], ends) | (within == lengths[review] - 1))
        first = np.concatenate([[0], last[:-1] + 1])  # each review's last token is an end: a review starts anew
        keep = last - first >= 1
        return positions[first[keep]], (last - first + 1)[keep], review[first[keep]]

    def encode(self, vocab: Vocab, rows: np.ndarray, max_len: int) -> EncodedReviews:
        lookup = np.array([vocab.stoi.get(t, UNK_ID) for t in self.lexicon], dtype=np.int64)
        lengths = np.minimum(self.offsets[rows + 1] - self.offsets[rows], max_len)
        return EncodedReviews(token_ids=self.token_ids, starts=self.offsets[rows], lengths=lengths,
                              labels=self.labels[rows], lookup=lookup)


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


def _review_chunks(path: Path, limit: int | None, report: ReadReport) -> Iterator[tuple[list[str], list[int]]]:
    reviews = read_reviews(path, report)
    if limit is not None:
        reviews = islice(reviews, limit)
    while chunk := list(islice(reviews, _CHUNK)):
        texts, labels = zip(*chunk)
        yield list(texts), list(labels)


def _cache_path(path: Path, limit: int | None) -> Path:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{limit}|{PREPROCESSING_VERSION}|{nltk.__version__}"
    return cache_dir() / f"corpus-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _load(folder: Path) -> TokenizedCorpus:
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("cache_format") != _CACHE_FORMAT:
        raise ValueError("another cache format")
    offsets = np.load(folder / "offsets.npy")
    token_ids = np.memmap(folder / "token_ids.i32", dtype=np.int32, mode="r") if offsets[-1] else np.zeros(0, np.int32)
    lexicon = (folder / "lexicon.txt").read_bytes().decode("utf-8", "surrogatepass").split("\n")
    if len(token_ids) != offsets[-1] or len(lexicon) != manifest["lexicon"]:
        raise ValueError("incomplete cache")
    return TokenizedCorpus(lexicon=lexicon, token_ids=token_ids, offsets=offsets, labels=np.load(folder / "labels.npy"),
                           report=ReadReport(**manifest["report"]), from_cache=True)


def _tokenized_chunks(chunks: Iterator[tuple[list[str], list[int]]], workers: int
                      ) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, list[int]]]:
    """(chunk lexicon, ids, lengths, labels) per chunk, in order; in worker processes when there is enough text,
    with a few chunks in flight at a time so that reading never runs far ahead of tokenizing."""
    first = list(islice(chunks, -(-_PARALLEL_FROM // _CHUNK)))
    chunks = chain(first, chunks)
    if workers <= 1 or sum(len(labels) for _, labels in first) < _PARALLEL_FROM:
        for texts, labels in chunks:
            yield *_tokenize_chunk(texts), labels
        return
    with ProcessPoolExecutor(workers) as pool:
        in_flight: deque[tuple[Future, list[int]]] = deque()
        for texts, labels in chunks:
            in_flight.append((pool.submit(_tokenize_chunk, texts), labels))
            if len(in_flight) >= 2 * workers:
                future, done_labels = in_flight.popleft()
                yield *future.result(), done_labels
        while in_flight:
            future, done_labels = in_flight.popleft()
            yield *future.result(), done_labels


def _write_corpus(path: Path, limit: int | None, workers: int, stop: Callable[[], bool] | None, report: ReadReport,
                  building: Path) -> None:
    """Tokenize `path` into the cache files in `building`: token ids, offsets, labels, lexicon and manifest."""
    lexicon: dict[str, int] = {}  # first appearance order, chunk after chunk: the same as a serial pass
    length_parts, label_parts = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    with open(building / "token_ids.i32", "wb") as token_file:
        for chunk_lexicon, ids, lengths, labels in _tokenized_chunks(_review_chunks(path, limit, report), workers):
            if stop is not None and stop():
                raise Stopped(f"{path.name}: stopped while tokenizing")
            to_global = np.fromiter((lexicon.setdefault(t, len(lexicon)) for t in chunk_lexicon), dtype=np.int32,
                                    count=len(chunk_lexicon))
            token_file.write(to_global[ids].tobytes())
            length_parts.append(lengths)
            label_parts.append(np.asarray(labels, dtype=np.int64))
    labels = np.concatenate(label_parts)
    report.kept, report.positives = len(labels), int(labels.sum())
    require_reviews(path, report)
    offsets = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(length_parts), out=offsets[1:])
    np.save(building / "offsets.npy", offsets)
    np.save(building / "labels.npy", labels)
    (building / "lexicon.txt").write_bytes("\n".join(lexicon).encode("utf-8", "surrogatepass"))
    stat = path.stat()
    manifest = {
        "cache_format": _CACHE_FORMAT, "source": str(path.resolve()), "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns, "limit": limit, "preprocessing_version": PREPROCESSING_VERSION,
        "nltk_version": nltk.__version__, "reviews": len(labels), "tokens": int(offsets[-1]),
        "lexicon": len(lexicon), "report": asdict(report),
    }
    (building / "manifest.json").write_text(json.dumps(manifest, indent=1))


def tokenize_corpus(path: str | Path, limit: int | None = None, use_cache: bool = True,
                    workers: int | None = None, stop: Callable[[], bool] | None = None) -> TokenizedCorpus:
    """Read and tokenize up to `limit` reviews of a file, or load the cached result of an earlier run.

    Large files are tokenized in worker processes (`workers`, default: one per core). A file with no usable
    review is a DataError (training asks for both classes itself). With `use_cache=False` nothing is kept on disk.
    `stop` is asked between chunks of reviews; when it answers True the work ends with `Stopped`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    target = _cache_path(path, limit)
    if use_cache and target.is_dir():
        try:
            return _load(target)
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(target, ignore_errors=True)  # a damaged cache is rebuilt, never trusted

    workers = workers if workers is not None else (os.cpu_count() or 1)
    report = ReadReport(source=str(path))
    parent = cache_dir() if use_cache else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=parent, prefix=".building-"))
    try:
        _write_corpus(path, limit, workers, stop, report, building)
        if not use_cache:
            corpus = _load(building)
            token_ids = np.array(corpus.token_ids)  # into memory: the folder goes away
            return TokenizedCorpus(lexicon=corpus.lexicon, token_ids=token_ids, offsets=corpus.offsets,
                                   labels=corpus.labels, report=corpus.report)
        try:
            os.replace(building, target)  # atomic: readers see the whole cache or none
        except OSError:  # another process finished the same cache first: use theirs
            pass
        corpus = _load(target)
        corpus.from_cache = False
        return corpus
    finally:
        shutil.rmtree(building, ignore_errors=True)


def tokenize_files(data: str | Path, limit: int | None = None, stop: Callable[[], bool] | None = None
                   ) -> TokenizedCorpus:
    """`tokenize_corpus` of each file of `data` (a bundled data set's name or one file), joined into one corpus over a
    shared lexicon, in the order of the files. Each file is cached on its own, so the sample read alone or as part of
    a larger set is tokenized once. With `limit`, each file gives its first reviews in proportion to its size on
    disk, `limit` in all: a quick run on a small slice still reads every source."""
    paths = data_files(data)
    corpora = []
    for path, share in zip(paths, _shares(limit, [p.stat().st_size if p.is_file() else 0 for p in paths])):
        if share == 0:
            continue
        corpus = tokenize_corpus(path, limit=share, stop=stop)
        corpus.sources = [source_name(path)]
        corpora.append(corpus)
    return corpora[0] if len(corpora) == 1 else _joined(corpora)


def _shares(limit: int | None, sizes: list[int]) -> list[int | None]:
    """`limit` cut in proportion to `sizes` (largest remainders first, so the shares add up to it); all None
    without a limit, and the whole limit for a single file."""
    if limit is None or len(sizes) == 1:
        return [limit] * len(sizes)
    exact = np.asarray(sizes, dtype=float) * limit / max(1, sum(sizes))
    shares = np.floor(exact).astype(int)
    shares[np.argsort(shares - exact, kind="stable")[: limit - shares.sum()]] += 1
    return shares.tolist()


def _joined(corpora: list[TokenizedCorpus]) -> TokenizedCorpus:
    lexicon: dict[str, int] = {}
    token_ids, lengths = [], []
    for corpus in corpora:
        to_joined = np.fromiter((lexicon.setdefault(t, len(lexicon)) for t in corpus.lexicon), dtype=np.int32,
                                count=len(corpus.lexicon))
        token_ids.append(to_joined[corpus.token_ids])
        lengths.append(np.diff(corpus.offsets))
    offsets = np.zeros(sum(map(len, corpora)) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths), out=offsets[1:])
    reports = [corpus.report for corpus in corpora]
    report = ReadReport(source=", ".join(corpus.sources[0] for corpus in corpora), format=reports[0].format,
                        kept=sum(r.kept for r in reports), skipped=sum(r.skipped for r in reports),
                        positives=sum(r.positives for r in reports))
    return TokenizedCorpus(lexicon=list(lexicon), token_ids=np.concatenate(token_ids), offsets=offsets,
                           labels=np.concatenate([corpus.labels for corpus in corpora]), report=report,
                           from_cache=all(corpus.from_cache for corpus in corpora),
                           sources=[corpus.sources[0] for corpus in corpora], sizes=[len(c) for c in corpora])
