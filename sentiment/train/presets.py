"""Named starting points for a training run, shared by the CLI and the app."""
from __future__ import annotations

from dataclasses import dataclass

from ..model.network import ModelConfig
from .config import TrainConfig


@dataclass(frozen=True)
class Preset:
    description: str
    train: TrainConfig
    model: ModelConfig
    data: str = "sample"  # the bundled data set the CLI trains on unless --data says otherwise


PRESETS: dict[str, Preset] = {
    "reference": Preset(
        description="the reference tutorial's settings: embedding 400, 2 × 512 LSTM, Adam 0.005, batch 400, 2 epochs, "
        "and a learned start state in place of its learned padding (slow on a CPU: about 110 reviews/s here, 2 minutes "
        "an epoch of the sample)",
        train=TrainConfig(),
        model=ModelConfig(learned_state=True),
    ),
    "quick": Preset(
        description="a quick CPU run of about a minute on 4,000 reviews: small and rough, to watch the curves move",
        train=TrainConfig(lr=0.003, batch_size=64, epochs=3, eval_every=10, limit=4000),
        model=ModelConfig(embedding_dim=64, hidden_size=64, num_layers=1, dropout=0.3),
    ),
    "lab": Preset(
        description="the recipe of the shipped default model (trained on the sample and the more reviews): a 192-unit "
        "LSTM pre-trained as a language model on the training reviews, then trained on the reviews, their titles and "
        "two sentences of each drawn anew every epoch (a negated one three times likelier, in a praising review "
        "thirty), read out with concat pooling; dropout, AdamW, a cosine schedule and an average of the weights (EMA); "
        "the 22,000 most frequent tokens, so that the checkpoint stays under 10 MB",
        train=TrainConfig(lr=0.003, batch_size=64, epochs=2, eval_every=0, weight_decay=0.05, schedule="cosine",
                          patience=3, ema=0.999, titles=True, sentences=2, negated_weight=3.0,
                          negated_praise_weight=10.0, pretrain_epochs=2, max_vocab=22_000),
        model=ModelConfig(embedding_dim=200, hidden_size=192, num_layers=1, dropout=0.5, embedding_dropout=0.3,
                          forget_bias=1.0, readout="pool"),
        data="sample+more",
    ),
    # The Memory tab's three cells, trained alike and read the tutorial's way (the last state, no pooling, which
    # would hand every token its own gradient and hide the difference between the cells); small enough to ship. The
    # plain RNN needs a lower learning rate: at 0.003 its updates overshoot and it stops at 61% (74% at 0.001).
    **{
        cell: Preset(
            description=f"a {name} for the Memory tab (checkpoints/{cell}.pt): the three cells trained alike, read the "
            "tutorial's way",
            train=TrainConfig(lr=lr, batch_size=64, epochs=8, eval_every=0, weight_decay=0.05, schedule="cosine",
                              patience=3, max_vocab=20_000),
            model=ModelConfig(embedding_dim=96, hidden_size=128, num_layers=1, dropout=0.5, embedding_dropout=0.3,
                              cell=cell, forget_bias=1.0 if cell == "lstm" else None),
        )
        for cell, name, lr in (("lstm", "LSTM", 0.003), ("gru", "GRU", 0.003), ("rnn", "plain tanh RNN", 0.001))
    },
}
