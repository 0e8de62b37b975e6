"""The Units tab's logic on the shipped checkpoint and real reviews: the atlas against direct computations, ablation,
the unit page, select to match and steering."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sentiment.units.atlas as atlas_module
from sentiment.config import ConfigError
from sentiment.data.corpus import tokenize_corpus
from sentiment.data.preprocessing import encode_review
from sentiment.data.sets import BUNDLED_SAMPLE
from sentiment.explain.gates import (
    cell_gates,
    cell_update,
    start_values,
    step_halves,
    trace_gates,
)
from sentiment.model.checkpoint import DEFAULT_CHECKPOINT, Checkpoint
from sentiment.model.network import Clamp, ModelConfig, SentimentNet
from sentiment.model.predictor import Predictor, load_predictor
from sentiment.model.scoring import score
from sentiment.units.ablation import ablate, ablated_accuracy
from sentiment.units.atlas import (
    MAX_STATE_BYTES,
    atlas_corpus,
    build_atlas,
    l1_entry_order,
)
from sentiment.units.pages import corpus_tokens, describe_unit
from sentiment.units.passages import (
    PASSAGES,
    _window_counts,
    exact_states,
    find_passages,
)
from sentiment.units.steering import generate, language_model_file, sample_tokens, steer

REVIEWS = 600  # the first reviews of the bundled sample: real, and quick to read


@pytest.fixture(scope="module")
def shipped():
    return load_predictor(DEFAULT_CHECKPOINT, device="cpu")


@pytest.fixture(scope="module")
def atlas(shipped):
    corpus = tokenize_corpus(BUNDLED_SAMPLE, limit=REVIEWS)
    return build_atlas(shipped, 0, "forward", "the sample's first reviews", corpus, np.arange(len(corpus)))


def final_states(predictor, atlas) -> np.ndarray:
    """(N, H) each review's h after its last token, one review at a time through the model's own layers."""
    model, rows = predictor.model, []
    with torch.inference_mode():
        for i in range(len(atlas.rows)):
            ids = torch.as_tensor(atlas.reviews.review(i))[None]
            rows.append(model.run_layers(model.embed(ids), torch.tensor([ids.size(1)]))[0][0, -1].numpy())
    return np.stack(rows)


def test_single_unit_accuracy_equals_a_direct_computation(shipped, atlas):
    direct = final_states(shipped, atlas)
    np.testing.assert_allclose(atlas.read.final, direct, atol=1e-5)
    fit, scored = atlas.halves
    assert not set(fit) & set(scored) and len(fit) + len(scored) == len(atlas.rows)
    labels = atlas.labels.astype(bool)
    for unit in [*atlas.best(2), int(np.argsort(atlas.accuracy)[0])]:
        values = direct[:, unit]
        # The threshold is the best one on the fitting half: no cut between its values does better, either way round.
        cuts = np.concatenate([[-np.inf], np.sort(values[fit]), [np.inf]])
        best_on_fit = max(((side * (values[fit] - cut) > 0) == labels[fit]).mean() for cut in cuts for side in (1, -1))
        chosen = atlas.signs[unit] * (values - atlas.thresholds[unit]) > 0
        assert (chosen[fit] == labels[fit]).mean() == pytest.approx(best_on_fit)
        # ... and the accuracy shown is that threshold's on the other half.
        assert atlas.accuracy[unit] == pytest.approx((chosen[scored] == labels[scored]).mean())


def test_the_atlas_describes_every_unit_the_best_alone_first(atlas, shipped):
    rows = atlas.rows_of_units()
    assert sorted(r["unit"] for r in rows) == list(range(shipped.model.config.hidden_size))
    alone = [r["alone"] for r in rows]
    assert alone == sorted(alone, reverse=True) and 0.5 < alone[0] <= 1
    ranks = sorted(r["L1 rank"] for r in rows if r["L1 rank"])
    assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) >= 10
    gates = {key.split()[0] for key in rows[0] if "<" in key}
    assert gates == {"input", "forget", "output"}  # the LSTM's sigmoid gates, not its candidate
    positive = atlas.labels.astype(bool)
    unit = rows[0]["unit"]
    assert rows[0]["final gap"] == pytest.approx(atlas.read.final[positive, unit].mean()
                                                 - atlas.read.final[~positive, unit].mean())


def test_gate_saturation_counts_the_gate_trace_of_every_step(shipped, atlas):
    shut = opened = steps = 0
    for i in range(len(atlas.rows)):
        forget = trace_gates(shipped.model, atlas.reviews.review(i)).layer(0).gates["forget"]
        shut, opened, steps = shut + (forget < 0.1).sum(0), opened + (forget > 0.9).sum(0), steps + len(forget)
    np.testing.assert_allclose(atlas.read.saturation["forget"][0], shut / steps, atol=1e-6)
    np.testing.assert_allclose(atlas.read.saturation["forget"][1], opened / steps, atol=1e-6)


def test_the_l1_sweep_lets_the_informative_feature_in_first():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 6)).astype(np.float32)
    labels = (features[:, 4] + 0.3 * rng.normal(size=400) > 0).astype(np.int64)
    rank = l1_entry_order(features, labels)
    assert rank[4] == 1 and sorted(rank[rank > 0]) == list(range(1, (rank > 0).sum() + 1))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_clamp_that_holds_nothing_is_the_plain_forward_pass(cell, bidirectional):
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=60, cell=cell, hidden_size=8, num_layers=2, embedding_dim=6,
                                     bidirectional=bidirectional, readout="pool", learned_state=True)).eval()
    ids, lengths = torch.randint(2, 60, (4, 9)), torch.tensor([9, 5, 3, 1])
    ids[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    free = Clamp(1, bidirectional, torch.full((8,), float("nan")))
    torch.testing.assert_close(model(ids, lengths, free), model(ids, lengths), atol=1e-6, rtol=0)
    values = torch.full((8,), float("nan"))
    values[3] = 0.25
    held = model.run_layers(model.embed(ids), lengths, Clamp(0, False, values))[0]
    assert (held[:, :, 3] == 0.25).all()  # at every step, padding included: it is never read
    # The next step reads the held value as its own past: the gate trace's cell, one step at a time, from held states.
    h, c = (v.expand(4, 8) if v is not None else None for v in start_values(model, 0, False))
    x, expected = model.embed(ids), []
    for t in range(9):
        x_part, h_part = step_halves(model, 0, False, x[:, t], h)
        h, c = cell_update(cell, cell_gates(cell, x_part, h_part), x_part, h_part, h, c)
        h = h.clone()
        h[:, 3] = 0.25
        expected.append(h)
    torch.testing.assert_close(held[..., :8], torch.stack(expected, dim=1), atol=1e-5, rtol=0)
    assert not torch.allclose(model(ids, lengths, Clamp(0, False, values)), model(ids, lengths))


def test_ablation_of_no_units_is_the_plain_model(shipped, atlas):
    plain = score(shipped.model, atlas.reviews)
    held = score(shipped.model, atlas.reviews, clamp=Clamp(0, False, torch.full((atlas.units,), float("nan"))))
    torch.testing.assert_close(held, plain, atol=1e-5, rtol=0)
    whole = ((plain > 0).numpy() == atlas.labels.astype(bool)).mean()
    assert ablated_accuracy(shipped, atlas, np.array([], dtype=np.int64)) == pytest.approx(whole)


def test_the_ablation_check_compares_the_best_units_with_random_ones(shipped, atlas):
    result = ablate(shipped, atlas, sizes=(1, 5), draws=2)
    assert result.whole == pytest.approx(((atlas.read.probabilities >= 0.5) == atlas.labels.astype(bool)).mean())
    assert result.row("best", 5).units == atlas.best(5).tolist()
    assert result.row("best", 1).accuracy == pytest.approx(ablated_accuracy(shipped, atlas, atlas.best(1)))
    random = result.row("random", 5)
    assert random.lowest <= random.accuracy <= random.highest and len(random.units) == 5
    assert f"Unit {result.best_unit} predicts best alone" in result.verdict()
    assert ablate(shipped, atlas, sizes=(1, 5), draws=2) is result  # kept with the atlas


def test_the_unit_page_shows_the_gate_trace_values(shipped, atlas):
    unit = int(atlas.best(1)[0])
    page = describe_unit(shipped, atlas, unit, "cell_state", count=3)
    assert len(page.up) == len(page.down) == 3
    for review in page.up + page.down:
        text = " ".join(review.tokens)
        tokens, ids = encode_review(text, shipped.vocab, shipped.max_len)
        assert tokens == review.tokens
        np.testing.assert_array_equal(trace_gates(shipped.model, ids, tokens).layer(0).cell_state[:, unit],
                                      review.values)
    hidden = describe_unit(shipped, atlas, unit, count=1)
    assert hidden.up[0].values.max() == pytest.approx(atlas.read.largest[:, unit].max(), abs=1e-5)
    assert hidden.down[0].values.min() == pytest.approx(atlas.read.smallest[:, unit].min(), abs=1e-5)


def test_unit_indices_and_states_are_checked(shipped, atlas):
    for bad in (-1, atlas.units, 1.5, True, "3", None):
        with pytest.raises(ConfigError, match="unit must be"):
            describe_unit(shipped, atlas, bad)
    with pytest.raises(ConfigError, match="state must be"):
        describe_unit(shipped, atlas, 0, "gates")
    with pytest.raises(ConfigError, match="unit must be"):
        steer(shipped, 0, "forward", "fine", shipped.model.config.hidden_size, 1.0)


def test_select_to_match_finds_passages_that_hold_the_phrase_pattern(shipped, atlas):
    match = find_passages(shipped, atlas, "The screen is not good and the battery dies.", "not good", 0.3)
    assert match.tokens[match.span[0] : match.span[1]] == ["not", "good"] and match.units
    assert len(match.passages) == PASSAGES
    assert [p.units_on for p in match.passages] == sorted((p.units_on for p in match.passages), reverse=True)
    chosen = np.array(match.followed)
    assert match.followed == match.units  # fewer than MAX_FOLLOWED: all followed
    for passage in match.passages:
        states = trace_gates(shipped.model, atlas.reviews.review(passage.row)).layer(0).hidden_state[:, chosen]
        window = states[passage.start : passage.start + 2]
        on = (window > 0.3).all(axis=0)
        if passage.start > 0:
            on &= states[passage.start - 1] <= 0.3
        assert on.sum() == passage.units_on > 0
        assert passage.tokens == corpus_tokens(atlas, passage.row)[passage.start : passage.start + 2]


def test_select_to_match_ranks_the_corpus_as_reading_every_review_in_float_would(shipped, atlas):
    match = find_passages(shipped, atlas, "", "not good", 0.3)
    chosen = np.array(match.followed)
    best = []
    for states in exact_states(shipped, atlas, np.arange(len(atlas.rows))):
        on, off = states[:, chosen] > 0.3, states[:, chosen] <= 0.3
        per_end = _window_counts(on, off, np.zeros(len(states), np.int32), 2, False)
        best.append(int(per_end.max()))
    assert [p.units_on for p in match.passages] == sorted(best, reverse=True)[: len(match.passages)]


def test_select_to_match_refuses_what_it_cannot_match(shipped, atlas):
    with pytest.raises(ConfigError, match="phrase is empty"):
        find_passages(shipped, atlas, "", "  ", 0.3)
    with pytest.raises(ConfigError, match="is not in the first"):
        find_passages(shipped, atlas, "It works well.", "not good", 0.3)
    nothing = find_passages(shipped, atlas, "", "not good", 0.999)  # no unit gets that high
    assert nothing.units == [] and nothing.passages == []


def test_clamping_the_sentiment_unit_high_and_low_moves_the_prediction_apart(shipped, atlas):
    unit = int(atlas.best(1)[0])
    review = "It works, but the strap broke after a month."
    free = steer(shipped, 0, "forward", review, unit, None)
    high, low = (steer(shipped, 0, "forward", review, unit, v) for v in (1.0, -1.0))
    assert free.clamped_probability == free.probability == pytest.approx(shipped.predict(review)[0], abs=1e-6)
    towards_positive = atlas.signs[unit] > 0  # holding it on its positive side pushes positive
    up, down = (high, low) if towards_positive else (low, high)
    assert up.clamped_probability > free.probability > down.clamped_probability
    assert up.clamped_trajectory[-1] == pytest.approx(up.clamped_probability)


def test_a_corpus_too_large_for_the_atlas_is_refused(shipped, tmp_path, monkeypatch):
    monkeypatch.setattr(atlas_module, "MAX_REVIEWS", 50)
    data = tmp_path / "reviews.txt"
    data.write_text("".join(f"__label__{1 + i % 2} review number {i} is fine\n" for i in range(51)))
    with pytest.raises(ConfigError, match="more than 50 reviews"):
        atlas_corpus(shipped, data)


def test_a_wide_layer_keeps_the_first_reviews_that_fit(shipped, monkeypatch):
    corpus = tokenize_corpus(BUNDLED_SAMPLE, limit=60)
    monkeypatch.setattr(atlas_module, "MAX_STATE_BYTES", 30 * 40 * shipped.model.config.hidden_size)
    atlas = build_atlas(shipped, 0, "forward", "sixty", corpus, np.arange(len(corpus)))
    assert 0 < len(atlas.rows) < 60 and atlas.cut == 60 - len(atlas.rows)
    assert atlas.read.states.nbytes <= MAX_STATE_BYTES


@pytest.fixture(scope="module")
def language_model():
    return load_predictor(language_model_file(DEFAULT_CHECKPOINT), device="cpu")


def test_generation_with_no_unit_held_is_the_free_model_and_holding_a_unit_changes_it(language_model, atlas):
    unit = int(atlas.best(1)[0])
    made = generate(language_model, 0, "forward", "This blender is", unit, 1.0, count=12, seed=3)
    assert len(made.free) == len(made.high) == len(made.low) == 12
    ids = encode_review("This blender is", language_model.vocab, language_model.max_len)[1]
    holds_nothing = Clamp(0, False, torch.full((atlas.units,), float("nan")))
    free = [language_model.vocab.itos[i] for i in sample_tokens(language_model, ids, 12, 3, holds_nothing)]
    assert made.free == free  # the clamp path holding nothing draws the very same text
    assert made.high != made.free or made.low != made.free
    assert made.free == generate(language_model, 0, "forward", "This blender is", unit, 1.0, 12, 3).free


def test_the_shipped_language_model_predicts_text_far_better_than_chance(language_model, shipped, atlas):
    """The model as pre-training left it models language: its next-token loss on real reviews is far below a uniform
    guess over its outputs, and below the classifier's own layers', which were tuned for the verdict afterwards."""
    def loss(predictor, projection) -> float:
        model, losses = predictor.model, []
        with torch.inference_mode():
            for i in range(40):
                ids = torch.as_tensor(atlas.reviews.review(i))[None]
                top = model.run_layers(model.embed(ids), torch.tensor([ids.size(1)]))[-1][0, :-1]
                targets = torch.where(ids[0, 1:] < model.lm_outputs, ids[0, 1:], 1)
                losses.append(torch.nn.functional.cross_entropy(model.next_token_logits(top, projection), targets))
        return float(torch.stack(losses).mean())

    projection = language_model.checkpoint.projection()
    pretrained = loss(language_model, projection)
    assert pretrained < 0.7 * np.log(language_model.model.lm_outputs) and pretrained < loss(shipped, projection) - 1


def test_generation_refuses_what_it_cannot_do(language_model, shipped):
    with pytest.raises(ConfigError, match="prompt is empty"):
        generate(language_model, 0, "forward", "   ", 0, 1.0)
    with pytest.raises(ConfigError, match="unit must be"):
        generate(language_model, 0, "forward", "Good", -1, 1.0)
    with pytest.raises(ConfigError, match="not a language model"):
        generate(shipped, 0, "forward", "Good", 0, 1.0)
    with pytest.raises(ConfigError, match="has no language model kept beside it"):
        language_model_file(DEFAULT_CHECKPOINT.parent / "lstm.pt")
    with pytest.raises(ConfigError, match="generate fewer"):
        generate(language_model, 0, "forward", "Good", 0, 1.0, count=language_model.max_len)


@pytest.fixture(scope="module")
def two_way(shipped):
    """A two-layer bidirectional LSTM with random weights over the shipped vocabulary: the paths default.pt (one
    layer, one direction) never takes."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=len(shipped.vocab), embedding_dim=12, hidden_size=10, num_layers=2,
                         bidirectional=True, readout="pool")
    return Predictor(Checkpoint(model_config=config, train_config={"max_len": 200}, vocab=shipped.vocab,
                                state_dict=SentimentNet(config).state_dict()),
                     device="cpu", name="two-way.pt")


def test_an_upper_layers_backward_direction_reads_as_the_gate_trace(two_way):
    corpus = tokenize_corpus(BUNDLED_SAMPLE, limit=80)
    atlas = build_atlas(two_way, 1, "backward", "eighty", corpus, np.arange(len(corpus)))
    shut = steps = 0
    for i in range(len(atlas.rows)):
        trace = trace_gates(two_way.model, atlas.reviews.review(i)).layer(1, "backward")
        np.testing.assert_allclose(atlas.read.final[i], trace.hidden_state[0], atol=1e-5)  # read last: token 0
        np.testing.assert_allclose(atlas.read.largest[i], trace.hidden_state.max(axis=0), atol=1e-5)
        stored = atlas.read.states[atlas.read.offsets[i] : atlas.read.offsets[i + 1]] / 127
        np.testing.assert_allclose(stored, trace.hidden_state, atol=1 / 254 + 1e-6)
        shut, steps = shut + (trace.gates["forget"] < 0.1).sum(axis=0), steps + len(trace.hidden_state)
    np.testing.assert_allclose(atlas.read.saturation["forget"][0], shut / steps, atol=1e-6)
    match = find_passages(two_way, atlas, "", "not good", 0.0)
    assert match.units and match.passages
    chosen = np.array(match.followed)
    for passage in match.passages:  # going backward, the step before a passage is the token after it
        states = trace_gates(two_way.model, atlas.reviews.review(passage.row)).layer(1, "backward").hidden_state
        on = (states[passage.start : passage.start + 2, chosen] > 0).all(axis=0)
        if passage.start + 2 < len(states):
            on &= states[passage.start + 2, chosen] <= 0
        assert on.sum() == passage.units_on
    held = ablated_accuracy(two_way, atlas, np.array([], dtype=np.int64))
    assert held == pytest.approx(((atlas.read.probabilities > 0.5) == atlas.labels.astype(bool)).mean())
