import threading
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, SMALL_TRAIN

from sentiment.config import ConfigError
from sentiment.data.files import DataError, load_reviews
from sentiment.data.sets import BUNDLED_DATA, BUNDLED_SAMPLE, source_name, split_indices
from sentiment.model.checkpoint import (
    language_model_path,
    list_checkpoints,
    load_checkpoint,
)
from sentiment.model.network import ModelConfig, SentimentNet
from sentiment.model.scoring import evaluate, held_out
from sentiment.train.config import TrainConfig
from sentiment.train.events import Evaluated, Finished, Preparing, Step
from sentiment.train.loop import train
from sentiment.train.steps import length_bucketed_batches


def test_short_run_on_real_reviews_learns_and_reports(trained):
    path, finished, events = trained
    assert isinstance(events[0], Preparing)
    evaluations = [e for e in events if isinstance(e, Evaluated)]
    steps = [e for e in events if isinstance(e, Step)]
    assert max(e.val_accuracy for e in evaluations) > 0.75
    assert steps[-1].step == finished.steps and steps[-1].eta_s == pytest.approx(0.0)
    assert all(s.reviews_per_s > 0 for s in steps)
    report = finished.report
    assert report.n == 600 and sum(map(sum, report.confusion)) == 600
    saved = load_checkpoint(path)
    assert saved.metrics["test"] == asdict(report)
    assert saved.metrics["best_val_loss"] == pytest.approx(min(e.val_loss for e in evaluations))
    # The report describes the saved file: the same reviews scored again by the loaded checkpoint.
    corpus, rows = held_out(saved)
    assert evaluate(saved.build_model(), corpus.encode(saved.vocab, rows, saved.max_len)) == report


def _run(out, **changes):
    return list(train(replace(SMALL_TRAIN, **changes), SMALL_MODEL, out=out))


def test_same_seed_same_result_and_odd_last_batch(tmp_path):
    out = tmp_path / "a.pt"
    config = dict(limit=300, epochs=1, batch_size=37, max_steps=0)  # 240 training reviews: last batch of 18
    first = [e.train_loss for e in _run(out, **config) if isinstance(e, Step)]
    second = [e.train_loss for e in _run(out, **config) if isinstance(e, Step)]
    assert len(first) == 7 and first == second
    third = [e.train_loss for e in _run(out, **config, seed=1) if isinstance(e, Step)]
    assert third != first


def test_stop_flag_ends_the_run_between_batches_and_keeps_a_tested_checkpoint(tmp_path):
    stop = threading.Event()
    out = tmp_path / "stopped.pt"
    events = []
    for event in train(replace(SMALL_TRAIN, limit=1000, eval_every=0), SMALL_MODEL, out=out, stop=stop):
        events.append(event)
        if isinstance(event, Step) and event.step == 3:
            stop.set()
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.stopped and finished.steps == 3
    assert finished.report is not None and load_checkpoint(out).metrics["steps"] == 3


def test_max_steps_and_early_stopping(tmp_path):
    out = tmp_path / "b.pt"
    assert _run(out, limit=600, max_steps=4)[-1].steps == 4
    events = _run(out, limit=600, epochs=50, eval_every=2, patience=1, lr=0.5)
    assert events[-1].reason == "early stop" and events[-1].steps < 50 * 8


@pytest.mark.parametrize("field,value", [("lr", 0), ("batch_size", -5), ("epochs", 10**9), ("schedule", "zigzag"), ("device", "tpu")])
def test_odd_hyper_parameters_are_refused_before_any_work(field, value):
    with pytest.raises(ConfigError):
        next(train(replace(TrainConfig(), **{field: value})))


def test_length_buckets_cover_every_review_once_and_group_similar_lengths():
    lengths = np.random.default_rng(0).integers(1, 200, size=1000)
    batches = length_bucketed_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 20  # random batches would spread ~190


def test_weight_averaging_keeps_the_average_not_the_last_step(tmp_path):
    """With an EMA decay of 0.99999 three steps barely move the average: the kept weights are the seeded start."""
    model_config = ModelConfig(embedding_dim=8, hidden_size=8, num_layers=1)
    config = TrainConfig(batch_size=32, epochs=1, max_steps=3, eval_every=3, limit=400, lr=0.05, ema=0.99999)
    list(train(config, model_config, out=tmp_path / "ema.pt"))
    checkpoint = load_checkpoint(tmp_path / "ema.pt")
    torch.manual_seed(config.seed)
    start = SentimentNet(replace(model_config, vocab_size=checkpoint.model_config.vocab_size)).state_dict()
    kept = checkpoint.state_dict
    assert max(float((kept[k] - start[k]).abs().max()) for k in start) < 1e-3
    list(train(replace(config, ema=0.0), model_config, out=tmp_path / "last.pt"))
    last = load_checkpoint(tmp_path / "last.pt").state_dict
    assert max(float((last[k] - start[k]).abs().max()) for k in start) > 1e-2  # lr 0.05 moves the raw weights


def test_a_stop_while_preparing_the_data_trains_and_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: tokenizing must run
    stop = threading.Event()
    stop.set()  # as if Stop was pressed while the file was being read
    out = tmp_path / "never.pt"
    events = list(train(replace(SMALL_TRAIN, limit=9000), SMALL_MODEL, out=out, stop=stop))
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.stopped and finished.steps == 0
    assert finished.checkpoint is None and finished.report is None and "nothing was trained or saved" in finished.reason
    assert not out.exists() and not any(isinstance(e, Step) for e in events)
    assert not list((tmp_path / "cache").glob("corpus-*"))  # a half-read file is not cached either


def test_titles_are_extra_short_examples_with_their_reviews_labels():
    from sentiment.train.prepare import prepare_data

    plain = prepare_data(BUNDLED_SAMPLE, replace(SMALL_TRAIN, limit=1000))
    with_titles = prepare_data(BUNDLED_SAMPLE, replace(SMALL_TRAIN, limit=1000, titles=True))
    n = len(plain.train)
    assert n < len(with_titles.train) <= 2 * n
    extra = np.arange(n, len(with_titles.train))
    corpus = with_titles.corpus
    for row in extra[:50]:
        start, length = with_titles.train.starts[row], with_titles.train.lengths[row]
        review = int(np.searchsorted(corpus.offsets, start, side="right") - 1)  # the review the title starts
        tokens = corpus.tokens(review)
        assert tokens[length] == ":" and ":" not in tokens[:length]  # the title is what comes before the first ':'
        assert with_titles.train.labels[row] == corpus.labels[review]


def test_sentence_examples_are_whole_sentences_of_their_reviews_drawn_anew_each_epoch(tmp_path):
    from sentiment.data.corpus import SENTENCE_ENDS
    from sentiment.train.prepare import one_sentence_each, prepare_data

    prepared = prepare_data(BUNDLED_SAMPLE, replace(SMALL_TRAIN, limit=1000, sentences=1))
    corpus, pool, owner = prepared.corpus, prepared.sentences, prepared.sentence_owner
    rows = split_indices(len(corpus)).train
    ends = set(SENTENCE_ENDS)
    for k in range(0, len(owner), 7):
        review = rows[owner[k]]
        tokens = corpus.tokens(review)[: SMALL_TRAIN.max_len]
        start = int(pool.starts[k] - corpus.offsets[review])
        sentence = tokens[start : start + pool.lengths[k]]
        assert len(sentence) >= 2 and not ends & set(sentence[:-1])  # one sentence, not a piece or two
        assert sentence[-1] in ends or start + len(sentence) == len(tokens)
        assert start == 0 or tokens[start - 1] in ends  # it begins where the one before ended
        assert pool.labels[k] == corpus.labels[review]
    assert len(owner) > 3 * len(rows)  # reviews have several sentences each

    owner_at = dict(zip(pool.starts.tolist(), owner.tolist()))
    first, second = (one_sentence_each(pool, owner, np.random.default_rng(seed)) for seed in (1, 2))
    for draw in (first, second):
        assert sorted(owner_at[s] for s in draw.starts.tolist()) == sorted(set(owner.tolist()))  # one per review
    assert np.mean(first.starts != second.starts) > 0.5  # drawn anew

    config = replace(SMALL_TRAIN, limit=300, epochs=1, sentences=2)
    small = prepare_data(BUNDLED_SAMPLE, config)
    finished = list(train(config, SMALL_MODEL, out=tmp_path / "s.pt"))[-1]
    examples = len(small.train) + 2 * len(np.unique(small.sentence_owner))  # each review, then two of its sentences
    assert finished.steps == -(-examples // config.batch_size)
    with pytest.raises(ConfigError, match="sentences per review must be a whole number"):
        replace(config, sentences=True).validate()


def test_negated_sentences_are_found_in_the_ids_and_drawn_in_proportion_to_their_weight():
    from sentiment.data.preprocessing import NEGATIONS
    from sentiment.train.prepare import (
        holds_negation,
        one_sentence_each,
        prepare_data,
        sentence_weights,
    )

    config = replace(SMALL_TRAIN, limit=1000, sentences=1)
    prepared = prepare_data(BUNDLED_SAMPLE, config)
    pool, owner, vocab = prepared.sentences, prepared.sentence_owner, prepared.vocab
    negated = holds_negation(pool, vocab)
    words = [[vocab.itos[i] for i in pool.review(k)] for k in range(len(pool))]
    assert negated.tolist() == [not NEGATIONS.isdisjoint(w) for w in words]
    assert 0.1 < negated.mean() < 0.5
    assert sentence_weights(pool, vocab, config) is None  # the plain draw
    weights = sentence_weights(pool, vocab, replace(config, negated_weight=2.0, negated_praise_weight=3.0))
    praise = pool.labels == 1
    assert set(weights[~negated]) == {1.0} and set(weights[negated & ~praise]) == {2.0}
    assert set(weights[negated & praise]) == {6.0}
    with pytest.raises(ConfigError, match="none are drawn"):
        replace(config, sentences=0, negated_praise_weight=3.0).validate()
    # In a review of k negated sentences and m others, a weight of 4 draws a negated one with probability 4k/(4k + m).
    k, m = (np.bincount(owner, weights=w) for w in (negated, ~negated))
    mixed = np.flatnonzero((k > 0) & (m > 0))
    rows = np.flatnonzero(np.isin(owner, mixed))
    sentences, owners = pool.subset(rows), owner[rows]
    weights = sentence_weights(sentences, vocab, replace(config, negated_weight=4.0))
    rng = np.random.default_rng(0)
    draws = [one_sentence_each(sentences, owners, rng, weights) for _ in range(200)]
    drawn_negated = np.mean([np.isin(d.starts, sentences.starts[negated[rows]]).mean() for d in draws])
    expected = np.mean(4 * k[mixed] / (4 * k[mixed] + m[mixed]))
    uniform = np.mean(k[mixed] / (k[mixed] + m[mixed]))
    assert len(mixed) > 100 and abs(drawn_negated - expected) < 0.01 and expected - uniform > 0.2
    assert all(len(d) == len(mixed) for d in draws)  # still one sentence a review


@pytest.mark.slow
def test_language_model_pretraining_runs_first_and_learns_to_predict_the_next_token(tmp_path):
    events = list(train(replace(SMALL_TRAIN, limit=1500, epochs=1, pretrain_epochs=2, lr=0.01), SMALL_MODEL,
                        out=tmp_path / "pre.pt"))
    phases = [e.phase for e in events if isinstance(e, Step)]
    assert phases[0] == "pretrain" and phases[-1] == "train" and phases == sorted(phases)  # all pre-training first
    losses = [e.train_loss for e in events if isinstance(e, Step) and e.phase == "pretrain"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0  # the next-token loss falls
    assert not language_model_path(tmp_path / "pre.pt").exists()  # kept only when asked


def test_the_language_model_is_kept_beside_the_checkpoint_as_pre_training_left_it(tmp_path):
    out = tmp_path / "kept.pt"
    list(train(replace(SMALL_TRAIN, limit=600, epochs=1, pretrain_epochs=1, keep_language_model=True), SMALL_MODEL,
               out=out))
    language_model, classifier = load_checkpoint(language_model_path(out)), load_checkpoint(out)
    assert tuple(language_model.projection().weight.shape) == (SMALL_MODEL.embedding_dim, SMALL_MODEL.hidden_size)
    assert classifier.projection() is None and list_checkpoints(tmp_path) == ["kept.pt"]  # not offered as a classifier
    # The classifier's layers were trained on from the language model's: the same shapes, other values.
    weights = "rnn.weight_hh_l0"
    assert not torch.equal(language_model.state_dict[weights], classifier.state_dict[weights])
    assert language_model.vocab.itos == classifier.vocab.itos
    # A run of the same name without it leaves no language model that would no longer match its checkpoint.
    list(train(replace(SMALL_TRAIN, limit=300, epochs=1, max_steps=1), SMALL_MODEL, out=out))
    assert out.exists() and not language_model_path(out).exists()
    # Stopped during pre-training: nothing is kept.
    stopped = threading.Event()
    stopped.set()
    list(train(replace(SMALL_TRAIN, limit=300, pretrain_epochs=1, keep_language_model=True), SMALL_MODEL,
               out=tmp_path / "stopped.pt", stop=stopped))
    assert not language_model_path(tmp_path / "stopped.pt").exists()
    with pytest.raises(ConfigError, match="there is none without language-model pre-training"):
        replace(SMALL_TRAIN, keep_language_model=True, pretrain_epochs=0).validate()
    with pytest.raises(ConfigError, match="pre-training a bidirectional model needs num_layers 1"):
        list(train(replace(SMALL_TRAIN, limit=300, pretrain_epochs=1), replace(SMALL_MODEL, bidirectional=True,
                                                                                num_layers=2), out=tmp_path / "x.pt"))


def test_pretraining_on_titles_reports_a_finite_loss_at_every_step(tmp_path):
    # Length-bucketed batches of 4 put the one-word titles ("Awesome") together, with no next token to predict.
    events = _run(tmp_path / "titles.pt", limit=600, epochs=1, batch_size=4, titles=True, pretrain_epochs=1)
    losses = [e.train_loss for e in events if isinstance(e, Step) and e.phase == "pretrain"]
    assert len(losses) > 200 and np.isfinite(losses).all()


def test_max_steps_caps_pre_training_and_the_classifier_each(tmp_path):
    events = _run(tmp_path / "capped.pt", limit=600, epochs=2, max_steps=3, batch_size=8, pretrain_epochs=2)
    steps = [(e.phase, e.step, e.total_steps) for e in events if isinstance(e, Step)]
    assert [s for s in steps if s[0] == "pretrain"] == [("pretrain", k, 3) for k in (1, 2, 3)]
    assert [s[1:] for s in steps if s[0] != "pretrain"] == [(k, 3) for k in (1, 2, 3)]


def test_a_refit_trains_on_train_and_validation_without_validating(tmp_path):
    events = list(train(replace(SMALL_TRAIN, limit=1000, epochs=1, refit=True), SMALL_MODEL, out=tmp_path / "refit.pt"))
    assert not any(isinstance(e, Evaluated) for e in events)
    saved = load_checkpoint(tmp_path / "refit.pt")
    assert saved.data["train"] == 900 and saved.metrics["best_val_loss"] is None and saved.metrics["test"]["n"] == 100


def test_too_few_reviews_to_split_are_refused(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("".join(f"__label__{1 + i % 2} review number {i}\n" for i in range(40)))
    with pytest.raises(DataError, match="40 usable reviews; training needs at least 100"):
        list(train(SMALL_TRAIN, SMALL_MODEL, data=path, out=tmp_path / "x.pt"))


def test_a_training_share_trains_on_part_of_the_training_split_and_tests_on_the_whole_test_split(tmp_path):
    finished = list(train(replace(SMALL_TRAIN, limit=1000, epochs=1, train_share=0.5), SMALL_MODEL,
                          out=tmp_path / "half.pt"))[-1]
    saved = load_checkpoint(tmp_path / "half.pt")
    assert saved.data["train"] == 400 and saved.data["train_share"] == 0.5 and finished.report.n == 100
    assert held_out(saved)[1].tolist() == split_indices(1000).test.tolist()
    with pytest.raises(DataError, match=r"training share 0\.05: 40 reviews to train on; a share needs at least 80"):
        list(train(replace(SMALL_TRAIN, limit=1000, train_share=0.05), SMALL_MODEL, out=tmp_path / "tiny.pt"))
    for wrong in (0.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="training share"):
            replace(SMALL_TRAIN, train_share=wrong).validate()
    with pytest.raises(ConfigError, match="training share: a refit trains on the whole validation split too"):
        replace(SMALL_TRAIN, train_share=0.5, refit=True).validate()


def test_a_data_set_of_several_files_is_split_per_source_and_tested_per_source(tmp_path, monkeypatch):
    from sentiment.data.sets import MORE_REVIEWS

    # Two real bundled sources (cut short) as a data set of their own.
    files = []
    for path in (BUNDLED_SAMPLE, MORE_REVIEWS[0]):
        texts, labels, _ = load_reviews(path, limit=500)
        files.append(tmp_path / f"{source_name(path)}.ft.txt")
        files[-1].write_text("".join(f"__label__{1 + y} {t}\n" for t, y in zip(texts, labels)))
    monkeypatch.setitem(BUNDLED_DATA, "two", tuple(files))
    out = tmp_path / "two.pt"
    finished = list(train(replace(SMALL_TRAIN, epochs=1, limit=0), SMALL_MODEL, data="two", out=out))[-1]
    assert list(finished.by_source) == [path.name.split(".")[0] for path in files]
    assert [r.n for r in finished.by_source.values()] == [50, 50]  # 10% of each file
    saved = load_checkpoint(out)
    assert saved.data["source"] == "two" and saved.data["sources"] == dict(zip(finished.by_source, [500, 500]))
    assert saved.metrics["test_by_source"] == {name: asdict(r) for name, r in finished.by_source.items()}
    # Each source's report is its share of the whole, and the checkpoint finds its test rows again.
    assert sum(r.accuracy * r.n for r in finished.by_source.values()) == pytest.approx(finished.report.accuracy * 100)
    corpus, rows = held_out(saved)
    assert evaluate(saved.build_model(), corpus.encode(saved.vocab, rows, saved.max_len)) == finished.report


def test_balanced_classes_weigh_the_positive_reviews_loss_by_the_negatives_share():
    from sentiment.train.steps import train_step

    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=20, embedding_dim=8, hidden_size=8, dropout=0.0))
    ids, lengths = torch.randint(2, 20, (6, 5)), torch.full((6,), 5)
    positive, negative = torch.ones(6, dtype=torch.long), torch.zeros(6, dtype=torch.long)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # measure the loss, change nothing
    plain = train_step(model, optimizer, ids, lengths, positive, clip=0)
    assert train_step(model, optimizer, ids, lengths, positive, clip=0, positive_weight=0.4) == pytest.approx(0.4 * plain)
    assert train_step(model, optimizer, ids, lengths, negative, clip=0, positive_weight=0.4) == pytest.approx(
        train_step(model, optimizer, ids, lengths, negative, clip=0))
