"""The data a run trains on: read, split and encoded once, and the short examples drawn from it."""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data.corpus import EncodedReviews, TokenizedCorpus, tokenize_files
from ..data.files import DataError, require_both_classes
from ..data.preprocessing import NEGATIONS, PREPROCESSING_VERSION, Vocab
from ..data.sets import SPLIT_SEED, data_name, split_by_source
from ..model.network import ModelConfig
from ..model.word_vectors import WordVectors, read_vectors
from .config import TrainConfig


@dataclass
class PreparedData:
    corpus: TokenizedCorpus
    train: EncodedReviews
    val: EncodedReviews
    test: EncodedReviews
    vocab: Vocab
    origin: dict
    sentences: EncodedReviews | None = None  # every sentence of the training reviews, in review order
    sentence_owner: np.ndarray | None = None  # (S,) the training review each sentence comes from
    test_rows: np.ndarray | None = None  # the corpus rows of `test`


MIN_REVIEWS = 100  # 80 to train on, 10 to validate, 10 to test: below that a test report means nothing


MIN_SHARED_REVIEWS = 80  # what a full split of MIN_REVIEWS trains on


def prepare_data(data: str | Path, config: TrainConfig, stop: threading.Event | None = None) -> PreparedData:
    """Read (or load from cache), split 80/10/10, build the vocabulary on the reviews trained on only (the training
    split, and with `refit` the validation split too). A set `stop` ends the reading with `Stopped`."""
    corpus = tokenize_files(data, limit=config.limit or None, stop=stop.is_set if stop else None)
    require_both_classes(data_name(data), corpus.report)
    if len(corpus) < MIN_REVIEWS:
        raise DataError(f"{data_name(data)}: {len(corpus):,} usable reviews; training needs at least {MIN_REVIEWS} "
                        "(80% to train on, 10% each to validate and test)")
    splits = split_by_source(corpus.sizes, train_share=config.train_share)
    if config.train_share < 1 and len(splits.train) < MIN_SHARED_REVIEWS:
        raise DataError(f"training share {config.train_share:g}: {len(splits.train):,} reviews to train on; a share "
                        f"needs at least {MIN_SHARED_REVIEWS} (a larger share, or more reviews)")
    trained_on = np.concatenate([splits.train, splits.val]) if config.refit else splits.train
    vocab = corpus.build_vocab(trained_on, config.min_freq, config.max_vocab or None)
    train = corpus.encode(vocab, trained_on, config.max_len)
    if config.titles:
        titles = corpus.titles(trained_on)
        has_title = titles > 0
        train = train.extended(EncodedReviews(token_ids=train.token_ids, starts=train.starts[has_title],
                                              lengths=titles[has_title], labels=train.labels[has_title],
                                              lookup=train.lookup))
    sentences = owner = None
    if config.sentences:
        starts, lengths, owner = corpus.sentences(trained_on, config.max_len)
        sentences = EncodedReviews(token_ids=train.token_ids, starts=starts, lengths=lengths,
                                   labels=corpus.labels[trained_on][owner], lookup=train.lookup)
    origin = {
        "source": data_name(data),
        "format": corpus.report.format,
        "reviews": len(corpus),
        "skipped_lines": corpus.report.skipped,
        "split_seed": SPLIT_SEED,
        "preprocessing_version": PREPROCESSING_VERSION,  # how the text was read: a later version reads it otherwise
        "limit": config.limit,
        "train_share": config.train_share,
        "train": len(trained_on),
        "val": len(splits.val),
        "test": len(splits.test),
        # Each source's reviews (in order: source k's rows follow those of the sources before it), so that its
        # own test rows can be found again.
        "sources": dict(zip(corpus.sources, corpus.sizes)),
    }
    return PreparedData(
        corpus=corpus,
        train=train,
        val=corpus.encode(vocab, splits.val, config.max_len),
        test=corpus.encode(vocab, splits.test, config.max_len),
        vocab=vocab,
        origin=origin,
        sentences=sentences,
        sentence_owner=owner,
        test_rows=splits.test,
    )


def one_sentence_each(sentences: EncodedReviews, owner: np.ndarray, rng: np.random.Generator,
                      weights: np.ndarray | None = None) -> EncodedReviews:
    """One sentence drawn at random from each review that has any (`owner` is sorted), each sentence as likely as its
    review's others or, given `weights`, in proportion to its weight."""
    if weights is None:
        counts = np.bincount(owner)
        has = np.flatnonzero(counts)
        first = np.cumsum(counts) - counts
        return sentences.subset(first[has] + (rng.random(len(has)) * counts[has]).astype(np.int64))
    # Each sentence draws an exponential time divided by its weight; the first of each review's to arrive wins, so
    # each is drawn in proportion to its weight (an exponential race).
    order = np.lexsort((rng.exponential(size=len(owner)) / weights, owner))
    first = np.flatnonzero(np.r_[True, owner[order][1:] != owner[order][:-1]])
    return sentences.subset(np.sort(order[first]))


def holds_negation(reviews: EncodedReviews, vocab: Vocab) -> np.ndarray:
    """(N,) bool: whether each text holds one of the NEGATIONS."""
    denying = np.array([vocab.stoi[t] for t in NEGATIONS if t in vocab.stoi])
    text_of = np.repeat(np.arange(len(reviews)), reviews.lengths)  # (tokens,)
    return np.bincount(text_of, weights=np.isin(reviews.flat_ids(), denying), minlength=len(reviews)) > 0


def sentence_weights(sentences: EncodedReviews, vocab: Vocab, config: TrainConfig) -> np.ndarray | None:
    """(N,) how likely each sentence is drawn against its review's others: negated_weight for a negated one, times
    negated_praise_weight in a praising review; None where every sentence is as likely (the plain draw)."""
    if config.negated_weight == config.negated_praise_weight == 1.0:
        return None
    praise_factor = np.where(sentences.labels == 1, config.negated_praise_weight, 1.0)
    return np.where(holds_negation(sentences, vocab), config.negated_weight * praise_factor, 1.0)


def word_vectors_for(config: TrainConfig, prepared: PreparedData, model_config: ModelConfig,
                  stop: threading.Event | None) -> tuple[WordVectors | None, ModelConfig, str]:
    """The word vectors the run starts from (None without `config.vectors`), the model config with the embedding
    size they set, and a sentence on what was found; recorded in the checkpoint's data too. Without `stop` the file is
    read to its end (ranks of a distributed run must not stop at different lines)."""
    if not config.vectors:
        return None, model_config, ""
    vectors = read_vectors(config.vectors, prepared.vocab, stop.is_set if stop else None)
    said = "; " + vectors.coverage(prepared.vocab, prepared.train)
    if vectors.dim != model_config.embedding_dim:
        said += f"; embedding size {vectors.dim}, the vectors' (not {model_config.embedding_dim})"
        model_config = replace(model_config, embedding_dim=vectors.dim).validate()
    prepared.origin["vectors"] = {"file": Path(config.vectors).name, "dim": vectors.dim, "read": vectors.read,
                                  "found": len(vectors.ids), "matched": vectors.matched}
    return vectors, model_config, said
