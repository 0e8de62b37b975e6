from dataclasses import replace

import pytest
import torch
from conftest import SMALL_MODEL, SMALL_TRAIN

from sentiment.config import ConfigError, declared
from sentiment.model.network import ModelConfig, SentimentNet
from sentiment.model.predictor import load_predictor
from sentiment.train.loop import train


@pytest.mark.parametrize("bidirectional,layers,learned_state,readout", [
    (False, 1, False, "last"), (False, 2, False, "last"), (True, 1, False, "last"), (True, 2, False, "last"),
    (False, 2, True, "last"), (True, 2, True, "last"), (False, 2, False, "pool"), (True, 2, True, "pool"),
])
def test_padding_never_changes_a_prediction(bidirectional, layers, learned_state, readout):
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=100, embedding_dim=16, hidden_size=12, num_layers=layers,
                                     bidirectional=bidirectional, learned_state=learned_state, readout=readout)).eval()
    if learned_state:
        with torch.no_grad():
            model.initial_h.uniform_(-1, 1), model.initial_c.uniform_(-1, 1)
    short = torch.randint(2, 100, (7,))
    long = torch.randint(2, 100, (40,))
    with torch.no_grad():
        alone = model(short[None], torch.tensor([7]))
        batch = torch.zeros(3, 40, dtype=torch.long)
        batch[0, :7], batch[1], batch[2, :25] = short, long, long[:25]
        beside_longer = model(batch, torch.tensor([7, 40, 25]))
    assert torch.allclose(torch.sigmoid(alone[0]), torch.sigmoid(beside_longer[0]), atol=1e-5)
    assert beside_longer.shape == (3,)


def declared_label(field: str) -> str:
    return next(spec.label for name, _, spec in declared(ModelConfig) if name == field)


@pytest.mark.parametrize("field,value", [("hidden_size", 0), ("num_layers", -1), ("dropout", 1.5), ("embedding_dim", 10**9), ("hidden_size", 2.5)])
def test_odd_model_settings_are_refused_with_a_message(field, value):
    config = ModelConfig(vocab_size=10, **{field: value})
    with pytest.raises(ConfigError, match=declared_label(field)):
        config.validate()


def test_a_learned_start_state_is_trained_saved_and_used(tmp_path):
    out = tmp_path / "learned.pt"
    finished = list(train(replace(SMALL_TRAIN, limit=1000, epochs=1), replace(SMALL_MODEL, learned_state=True), out=out))[-1]
    predictor = load_predictor(finished.checkpoint, "cpu")
    model = predictor.model
    assert model.config.learned_state
    assert model.initial_h.detach().abs().max() > 0 and model.initial_c.detach().abs().max() > 0
    ids = torch.tensor(predictor.vocab.encode(["great", "product"]))
    with torch.no_grad():
        learned = model(ids[None], torch.tensor([2]))
        model.initial_h.zero_(), model.initial_c.zero_()
        from_zeros = model(ids[None], torch.tensor([2]))
    assert not torch.allclose(learned, from_zeros)  # the prediction starts from the saved state, not from zeros


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_model_runs_nn_lstms_own_computation_with_packed_sequences_semantics(cell):
    """run_layers (a layer and a direction at a time, no packing) gives what the stacked module gives on packed
    reviews: every review read from its own first token forwards and from its own last token backwards."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(1)
    model = SentimentNet(ModelConfig(vocab_size=50, embedding_dim=6, hidden_size=5, num_layers=3, bidirectional=True,
                                     cell=cell, dropout=0.0)).eval()
    lengths = torch.tensor([12, 5, 9, 1])
    ids = torch.randint(2, 50, (4, 12)) * (torch.arange(12)[None] < lengths[:, None])
    with torch.no_grad():
        x = model.embed(ids)
        packed, _ = model.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=12)
        ours = model.run_layers(x, lengths)[-1]
    real = (torch.arange(12)[None] < lengths[:, None])[..., None]
    assert torch.allclose(ours * real, expected * real, atol=1e-6)


def test_the_per_layer_modules_share_the_models_parameters():
    model = SentimentNet(ModelConfig(vocab_size=50, embedding_dim=6, hidden_size=5, num_layers=2, bidirectional=True))
    assert model.layer_modules[1][1].weight_hh_l0 is model.rnn.weight_hh_l1_reverse
    assert sorted(model.state_dict()) == sorted(dict(model.named_parameters()))  # each weight once, under rnn.*
    with torch.no_grad():
        model.rnn.bias_ih_l1.add_(1.0)  # what an optimizer step does
    assert torch.equal(model.layer_modules[1][0].bias_ih_l0, model.rnn.bias_ih_l1)
    copy = __import__("copy").deepcopy(model)  # the weight average (EMA) copies the model
    assert copy.layer_modules[0][0].weight_ih_l0 is copy.rnn.weight_ih_l0


@pytest.mark.parametrize("readout,parts", [("last", 1), ("pool", 3)])
def test_the_readout_decides_what_the_head_reads(readout, parts):
    model = SentimentNet(ModelConfig(vocab_size=50, embedding_dim=6, hidden_size=5, num_layers=1, readout=readout)).eval()
    states = torch.randn(2, 7, 5)
    lengths = torch.tensor([7, 3])
    features = model.readout(states, lengths)
    assert features.shape == (2, 5 * parts)
    assert torch.equal(features[1, :5], states[1, 2])  # the state after the last real token
    if readout == "pool":
        assert torch.equal(features[1, 5:10], states[1, :3].amax(0))  # padding never counts
        assert torch.allclose(features[1, 10:], states[1, :3].mean(0))
    # the readout of every prefix at once is the readout of each prefix alone
    prefixes = model.prefix_readout(states[0])
    for t in (0, 3, 6):
        assert torch.allclose(prefixes[t], model.readout(states[:1, : t + 1], torch.tensor([t + 1]))[0], atol=1e-6)
