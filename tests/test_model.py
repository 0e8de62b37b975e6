import pytest
import torch

from sentiment.model import ConfigError, ModelConfig, SentimentNet


@pytest.mark.parametrize("bidirectional,layers", [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_padding_never_changes_a_prediction(bidirectional, layers):
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=100, embedding_dim=16, hidden_size=12, num_layers=layers,
                                     bidirectional=bidirectional)).eval()
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
