import os
import time

import numpy as np

from sentiment.data.corpus import tokenize_corpus
from sentiment.data.preprocessing import Vocab, tokenize_review


def _write(path, n):
    lines = [f"__label__{1 + i % 2} Review {i}: the kettle {'works great' if i % 2 else 'broke fast'} day {i % 7}.\n" for i in range(n)]
    path.write_text("".join(lines))


def test_cache_is_reused_and_gives_the_same_ids_as_tokenizing(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "r.txt"
    _write(data, 300)
    first = tokenize_corpus(data)
    assert not first.from_cache
    import sentiment.data.corpus as corpus_module

    def no_tokenizing(_):
        raise AssertionError("the second run must not tokenize")

    monkeypatch.setattr(corpus_module, "_tokenize_chunk", no_tokenizing)
    second = tokenize_corpus(data)
    assert second.from_cache
    assert second.lexicon == first.lexicon
    assert np.array_equal(second.token_ids, first.token_ids) and np.array_equal(second.labels, first.labels)
    # and both equal tokenizing each review directly
    assert second.tokens(5) == tokenize_review(data.read_text().splitlines()[5].split(" ", 1)[1])


def test_cache_is_rebuilt_when_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "r.txt"
    _write(data, 50)
    assert len(tokenize_corpus(data)) == 50
    _write(data, 60)
    os.utime(data, (time.time() + 5, time.time() + 5))
    changed = tokenize_corpus(data)
    assert not changed.from_cache and len(changed) == 60


def test_parallel_and_serial_tokenizing_agree(tmp_path):
    data = tmp_path / "r.txt"
    _write(data, 200)
    serial = tokenize_corpus(data, use_cache=False, workers=1)
    import sentiment.data.corpus as corpus_module

    parallel_from = corpus_module._PARALLEL_FROM
    try:
        corpus_module._PARALLEL_FROM = 10
        parallel = tokenize_corpus(data, use_cache=False, workers=2)
    finally:
        corpus_module._PARALLEL_FROM = parallel_from
    assert serial.lexicon == parallel.lexicon and np.array_equal(serial.token_ids, parallel.token_ids)


def test_encode_uses_the_vocabulary_and_max_len(tmp_path):
    data = tmp_path / "r.txt"
    _write(data, 20)
    corpus = tokenize_corpus(data, use_cache=False)
    rows = np.arange(10)
    vocab = corpus.build_vocab(rows, min_freq=2)
    encoded = corpus.encode(vocab, np.array([12]), max_len=4)
    expected = Vocab.encode(vocab, corpus.tokens(12))[:4]
    assert encoded.review(0).tolist() == expected and encoded.labels.tolist() == [corpus.labels[12]]
