from dataclasses import replace

import pytest
import torch

from conftest import SMALL_MODEL, SMALL_TRAIN
from sentiment.checkpoint import load_predictor
from sentiment.model import ConfigError, ModelConfig, SentimentNet
from sentiment.trainer import train


@pytest.mark.parametrize("bidirectional,layers,learned_state", [(False, 1, False), (False, 2, False), (True, 1, False),
                                                                (True, 2, False), (False, 2, True), (True, 2, True)])
def test_padding_never_changes_a_prediction(bidirectional, layers, learned_state):
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=100, embedding_dim=16, hidden_size=12, num_layers=layers,
                                     bidirectional=bidirectional, learned_state=learned_state)).eval()
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


@pytest.mark.parametrize("field,value", [("hidden_size", 0), ("num_layers", -1), ("dropout", 1.5), ("embedding_dim", 10**9), ("hidden_size", 2.5)])
def test_odd_model_settings_are_refused_with_a_message(field, value):
    config = ModelConfig(vocab_size=10, **{field: value})
    with pytest.raises(ConfigError, match=field):
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
