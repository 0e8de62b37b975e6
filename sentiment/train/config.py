"""A training run's settings, each declared once (sentiment/config.py), and what this machine can run."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError, check_settings, setting
from ..model.network import pick_device

SCHEDULES = ("constant", "cosine")


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast dtypes


@functools.cache
def autocast_runs(device_type: str, precision: str) -> bool:
    """Whether this machine runs an LSTM under autocast in `precision`: oneDNN builds a bf16 LSTM only on CPUs with
    the instructions for it (it refuses on some AMD EPYC), so the question is put to the machine, once."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return True
    lstm = torch.nn.LSTM(4, 4).to(device_type)
    try:
        with torch.autocast(device_type, dtype=dtype):
            lstm(torch.zeros(2, 1, 4, device=device_type))
    except RuntimeError:
        return False
    return True


@dataclass
class TrainConfig:
    epochs: int = setting(2, "epochs", "passes over the training reviews", low=1, high=1000, group="basic", public=5)
    lr: float = setting(0.005, "learning rate", "the optimiser's step size (AdamW)", low=1e-7, high=10.0, group="basic")
    batch_size: int = setting(400, "batch size", "reviews per optimisation step", low=1, high=20_000, group="basic",
                              public=256)
    # Language-model pre-training (predict the next token; ULMFiT, Howard & Ruder 2018) of the embedding and the
    # recurrent layers on the training reviews' text before the classifier trains.
    pretrain_epochs: int = setting(0, "pre-training epochs", "next-token language-model epochs before the classifier",
                                   low=0, high=100, group="model", public=1)
    # People type short sentences into the Predict box, and reviews alone teach little about them.
    titles: bool = setting(False, "train on titles too", "each review's title alone as an extra short example",
                           group="switches")
    # Drawn independently (a short review's one sentence may come twice) and anew every epoch, so no one sentence's
    # label noise is learned by heart.
    sentences: int = setting(0, "sentences per review", "extra short examples drawn anew each epoch; 0 = none",
                             low=0, high=10, group="switches", public=2)
    # A negation in a short text mostly marks a complaint, so a model that reads few of the others ("I wasn't
    # disappointed") reads them as complaints too: drawing more of the reviews' own negated sentences shows it more.
    negated_weight: float = setting(1.0, "negated sentences' weight", "how many times likelier a sentence with not, "
                                    "n't, no, never, … is drawn as a short example; 1 = as any",
                                    low=1.0, high=100.0, group="data")
    # Negated praise is the rarest of them: most negated sentences complain, so a model still reads "I can't fault it"
    # as a complaint unless the praising reviews' negated sentences come up more often again.
    negated_praise_weight: float = setting(1.0, "negated praise's weight", "times likelier again for a praising "
                                           "review's negated sentence; 1 = as any negated one", low=1.0, high=100.0,
                                           group="data")
    # The tutorial's next step: an embedding that starts from word vectors trained elsewhere (sentiment/vectors.py).
    vectors: str = setting("", "word vectors", "a GloVe .txt, fastText .vec or word2vec text file (plain, .gz, .bz2 or "
                           ".zip) to start the embedding from; its vectors' size sets the embedding size")
    freeze_embedding: bool = setting(False, "freeze the embedding", "token vectors stay as they start (from the word "
                                     "vectors, or drawn at random)", group="switches")
    # Radford et al. (2017) steered the text a language model writes by holding one unit; the Units tab does the same
    # with the model as it was after pre-training (the classifier's layers are tuned for the verdict afterwards).
    keep_language_model: bool = setting(False, "keep the language model", "save the model as pre-training left it "
                                        "in lm/ beside the checkpoint, for the Units tab to generate text with",
                                        group="switches")
    # The refit of a recipe whose length was chosen on validation; the test split stays out.
    refit: bool = setting(False, "refit on train + validation", "no validation: the chosen length on 90% of the data",
                          group="switches")
    # Data that is mostly positive then does not teach the model to lean positive on reviews that are half and half.
    balance: bool = setting(False, "balance the classes", "weigh the positive and the negative reviews' losses equally",
                            group="switches")
    schedule: str = setting("constant", "learning-rate schedule", "constant, or cosine decay to 0 over the run",
                            choices=SCHEDULES, group="optimiser")
    weight_decay: float = setting(0.0, "weight decay", "AdamW's pull of every weight towards 0", low=0.0, high=10.0,
                                  group="optimiser")
    # It smooths the last steps' noise away, so the kept checkpoint depends less on where a validation fell.
    ema: float = setting(0.0, "weight averaging (EMA decay)", "a moving average of the weights is kept; 0 = off",
                         low=0.0, high=0.99999, group="optimiser")
    clip: float = setting(5.0, "gradient clipping", "largest gradient norm per step; 0 = off", low=0.0, high=1e6,
                          group="optimiser")
    eval_every: int = setting(20, "validate every N steps", "0 = at each epoch's end", low=0, high=10_000_000,
                              group="optimiser")
    patience: int = setting(0, "early-stop patience", "stop after N validations without a better loss; 0 = never",
                            low=0, high=10_000, group="optimiser")
    max_steps: int = setting(0, "max steps", "the most steps of pre-training, and again of the classifier; 0 = no limit",
                             low=0, high=100_000_000, group="optimiser")
    max_len: int = setting(200, "tokens per review", "a review's first N tokens are read", low=1, high=5000,
                           group="data", public=400)
    min_freq: int = setting(2, "min token count", "rarer tokens become _UNK", low=1, high=1_000_000, group="data")
    max_vocab: int = setting(0, "max vocabulary", "0 = no limit", low=0, high=5_000_000, group="data")
    seed: int = setting(0, "seed", "the same seed gives the same run", low=0, high=2**31 - 1, group="data")
    device: str = setting("auto", "device", "auto: CUDA when there is a GPU", choices=("auto", "cpu", "cuda"),
                          group="data")
    precision: str = setting("fp32", "precision", "bf16 or fp16 train under autocast (fp16 on CUDA only)",
                             choices=tuple(PRECISIONS), group="data")
    # The learning curve's knob (`bench curve`): less of the same data, scored on the same held-out reviews.
    train_share: float = setting(1.0, "training share", "the share of each source's training reviews trained on, a "
                                 "fixed part (a smaller share lies within every larger one); validation and test "
                                 "unchanged", low=0.001, high=1.0)
    # The Train tab shows the row limit beside the data it limits, not among these groups.
    limit: int = setting(0, "row limit", "reviews read, from each file of a data set in proportion to its size; 0 = all",
                         low=0, high=1_000_000_000, public=5000, unlimited_at=0)

    def validate(self) -> TrainConfig:
        check_settings(self)
        if not isinstance(self.vectors, str) or (self.vectors and not Path(self.vectors).is_file()):
            raise ConfigError(f"word vectors: {str(self.vectors)[:80]!r} is not a file")
        if (self.negated_weight != 1.0 or self.negated_praise_weight != 1.0) and not self.sentences:
            raise ConfigError("negated sentences' weight: it weighs the sentences drawn as short examples, and none are "
                              "drawn (set sentences per review above 0, or the weights to 1)")
        if self.refit and self.train_share < 1:
            raise ConfigError("training share: a refit trains on the whole validation split too, so a share of the "
                              "training split would not be that share of the data (use one or the other)")
        if self.keep_language_model and not self.pretrain_epochs:
            raise ConfigError("keep the language model: there is none without language-model pre-training (set "
                              "pre-training epochs above 0)")
        device = pick_device(self.device)
        if self.precision == "fp16" and device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA GPU; on a CPU use fp32 or bf16")
        if not autocast_runs(device.type, self.precision):
            raise ConfigError(f"precision {self.precision}: this {device.type.upper()} cannot run an LSTM in "
                              f"{self.precision} (its math library refuses); use fp32")
        return self
