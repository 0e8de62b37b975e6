"""The training loop. It never prints: it yields events, and the CLI, the app or a test decides how to show them.

    for event in train(TrainConfig(epochs=1), ModelConfig(hidden_size=128), out="checkpoints/mine.pt"):
        ...  # Preparing, Step, Evaluated, then one Finished

Batches group reviews of similar length and are right-padded only to the batch's longest review; the model
reads each review's output at its own last token, so padding costs little and never changes a prediction.

Started in a process group (`torchrun --nproc_per_node=N -m sentiment.train ...`), the same loop trains with
DistributedDataParallel: every rank draws the same batches of `batch_size` reviews and reads only its share of each
(`rank_share`), its loss weighted by that share, and the gradients are averaged (by DDP for the classifier, at every
step of language-model pre-training), so that N processes take the steps one process takes, up to float rounding
(with dropout off: each process draws masks for its part of a batch, not for the whole). Only rank 0 validates, tests
and writes checkpoints, and its stop decisions are shared with the others.
"""
from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import CHECKPOINT_DIR, Checkpoint, language_model_path, save_checkpoint, stored
from .config import ConfigError, check_settings, setting
from .corpus import EncodedReviews, Stopped, TokenizedCorpus, tokenize_files
from .data import SPLIT_SEED, DataError, data_name, require_both_classes, split_by_source
from .model import ModelConfig, SentimentNet, describe_device, pick_device
from .preprocessing import NEGATIONS, PAD_ID, PREPROCESSING_VERSION, UNK_ID, Vocab
from .scoring import TestReport, by_source, evaluate, score
from .vectors import WordVectors, read_vectors

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
    max_steps: int = setting(0, "max steps", "0 = no limit", low=0, high=100_000_000, group="optimiser")
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


@dataclass(frozen=True)
class Preparing:
    message: str


@dataclass(frozen=True)
class Step:
    phase: str  # "pretrain" (next-token loss) or "train" (the classifier's loss)
    step: int
    total_steps: int
    epoch: int
    train_loss: float
    lr: float
    reviews_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Evaluated:
    step: int
    epoch: int
    val_loss: float
    val_accuracy: float
    improved: bool


@dataclass(frozen=True)
class Finished:
    checkpoint: Path | None
    report: TestReport | None
    stopped: bool
    reason: str
    steps: int
    seconds: float
    ranks: int = 1  # processes that trained together; with more than one, their weights were checked identical
    # With more than one source (a bundled data set of several files), the test report of each source's test reviews.
    by_source: dict[str, TestReport] = field(default_factory=dict)


TrainEvent = Preparing | Step | Evaluated | Finished


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffled batches of reviews of similar length: shuffle, sort within pools of `pool` batches, cut, shuffle
    the batch order. Padding then adds a few percent instead of doubling the work."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start : start + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor, lengths: torch.Tensor,
               labels: torch.Tensor, clip: float, precision: str = "fp32",
               scaler: torch.amp.GradScaler | None = None, positive_weight: float = 1.0, share: float = 1.0) -> float:
    """One optimisation step on a right-padded batch; returns the batch loss. `model` may be DDP-wrapped.
    `positive_weight` scales the positive reviews' loss (the negatives' is 1); `share` weighs the loss of a rank's
    part of a batch split between ranks (its rows × ranks / the batch's rows), whose gradients DDP averages."""
    device = next(model.parameters()).device  # DDP has no .device
    dtype = PRECISIONS[precision]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        logits = model(ids.to(device), lengths)  # (B,)
    weight = None if positive_weight == 1.0 else torch.tensor(positive_weight, device=device)
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.to(device).float(), pos_weight=weight)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:  # fp16: scale the loss so small gradients survive, unscale before clipping
        scaler.scale(loss * share).backward()
        scaler.unscale_(optimizer)
    else:
        (loss * share).backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.item()


def _distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless this process belongs to an initialised process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _shared_flag(flag: bool, world: int) -> bool:
    """True on every rank when it is true on any: all ranks stop at the same step."""
    if world == 1:
        return flag
    tensor = torch.tensor([int(flag)])
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return bool(tensor.item())


def rank_share(batches: list[np.ndarray], rank: int, world: int) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """For each batch (every rank drew the same ones): the whole batch, the rows this rank reads (rows rank,
    rank + world, rank + 2 world, …) and whether they count. A rank left without a row by a batch smaller than the
    ranks reads the batch's first row and does not count it: it must still take part in the step."""
    for whole in batches:
        mine = whole[rank::world]
        yield (whole, mine, True) if len(mine) else (whole, whole[:1], False)


def _average_gradients(parameters: list[torch.nn.Parameter], world: int) -> None:
    """Every rank's gradients replaced by their mean over the ranks (what DDP does for the classifier)."""
    for p in parameters:
        if p.requires_grad:
            if p.grad is None:  # every rank must take part in every reduction
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)
            p.grad /= world


def _check_replicas(model: torch.nn.Module, world: int, after: str = "training") -> None:
    """Raise unless every rank holds exactly the same weights (DDP, and pre-training's averaged gradients, keep them
    so; this proves it did)."""
    digest = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()  # (P,)
    gathered = [torch.empty_like(digest) for _ in range(world)]
    torch.distributed.all_gather(gathered, digest)
    if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
        raise RuntimeError(f"distributed ranks ended {after} with different weights")


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
        train = train.extended(EncodedReviews(train.token_ids, train.starts[has_title], titles[has_title],
                                              train.labels[has_title], train.lookup))
    sentences = owner = None
    if config.sentences:
        starts, lengths, owner = corpus.sentences(trained_on, config.max_len)
        sentences = EncodedReviews(train.token_ids, starts, lengths, corpus.labels[trained_on][owner], train.lookup)
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
        corpus,
        train,
        corpus.encode(vocab, splits.val, config.max_len),
        corpus.encode(vocab, splits.test, config.max_len),
        vocab,
        origin,
        sentences,
        owner,
        splits.test,
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


def _scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def pretrain(model: SentimentNet, reviews: EncodedReviews, config: TrainConfig, rng: np.random.Generator,
             stop: threading.Event, world: int = 1) -> Generator[Step, None, torch.nn.Linear]:
    """Language-model pre-training of the embedding and the recurrent layers on the reviews' text: each forward state
    predicts the next token and, in a bidirectional layer, each backward state the one before. A projection to the
    embedding size and the embedding itself make the output layer (tied weights, Press & Wolf 2017); it is dropped
    afterwards (`keep_language_model` keeps it), and the classifier's head is not touched. Under `world` > 1 processes
    each reads its share of every batch (`rank_share`) and their gradients are averaged at every step: the steps one
    process would take. Returns the projection, or None when stopped before the end."""
    c = model.config
    if c.bidirectional and c.num_layers > 1:
        raise ConfigError("pre-training a bidirectional model needs num_layers 1: a second layer's forward direction "
                          "would read the first layer's backward states, which have seen the tokens it must predict")
    H, vocab_out = c.hidden_size, model.lm_outputs
    # A one-token text (a title such as "Awesome") has no next token to predict: a batch of them alone would average
    # a loss over nothing.
    reviews = reviews.subset(np.flatnonzero(reviews.lengths > 1))
    rank = torch.distributed.get_rank() if world > 1 else 0
    projection = torch.nn.Linear(H, c.embedding_dim).to(model.device)
    parameters = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    optimizer = torch.optim.AdamW([*parameters, *projection.parameters()], lr=config.lr, weight_decay=config.weight_decay)
    total_steps = math.ceil(len(reviews) / config.batch_size) * config.pretrain_epochs
    scheduler = _scheduler(optimizer, config.schedule, total_steps)

    def next_token_loss(states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model.next_token_logits(model.dropout(states), projection)  # (B, T - 1, V')
        return F.cross_entropy(logits.reshape(-1, vocab_out), targets.reshape(-1), ignore_index=PAD_ID)

    step, read, seconds = 0, 0, 0.0
    model.train()
    for epoch in range(1, config.pretrain_epochs + 1):
        batches = length_bucketed_batches(reviews.lengths, config.batch_size, rng)
        for whole, rows, counted in rank_share(batches, rank, world):
            if _shared_flag(stop.is_set(), world):
                return None
            tick = time.perf_counter()
            # Each text predicts its tokens after the first: this rank's share of the batch's predictions weighs its
            # mean loss, so that the ranks' averaged gradient is the whole batch's.
            share = counted * (reviews.lengths[rows] - 1).sum() * world / (reviews.lengths[whole] - 1).sum()
            ids, lengths, _ = reviews.batch(rows)
            ids = ids.to(model.device)
            states = model.run_layers(model.embed(ids), lengths)[-1]  # (B, T, D*H)
            targets = torch.where(ids < vocab_out, ids, UNK_ID)  # (B, T); _PAD (0) is ignored
            pairs = [(states[:, :-1, :H], targets[:, 1:])]  # the state after token t predicts token t+1
            if c.bidirectional:  # the backward state at token t has read t..end: it predicts token t-1
                real = torch.arange(ids.size(1), device=ids.device)[None, 1:] < lengths.to(ids.device)[:, None]
                pairs.append((states[:, 1:, H:], targets[:, :-1].masked_fill(~real, PAD_ID)))
            loss = sum(next_token_loss(h, y) for h, y in pairs) / len(pairs)
            optimizer.zero_grad(set_to_none=True)
            (loss * share).backward()
            if world > 1:
                _average_gradients([*parameters, *projection.parameters()], world)
            if config.clip:
                torch.nn.utils.clip_grad_norm_(parameters, config.clip)
            optimizer.step()
            scheduler.step()
            step, read = step + 1, read + len(whole)
            seconds += time.perf_counter() - tick
            yield Step("pretrain", step, total_steps, epoch, loss.item(), scheduler.get_last_lr()[0], read / seconds,
                       seconds / step * (total_steps - step))
    return projection


class _Fit:
    """The classifier's optimisation and what it keeps: the best (averaged) weights by validation loss."""

    def __init__(self, model: SentimentNet, config: TrainConfig, total_steps: int, world: int,
                 positive_weight: float = 1.0) -> None:
        self.model, self.config, self.positive_weight = model, config, positive_weight
        self.stepped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = _scheduler(self.optimizer, config.schedule, total_steps)
        self.scaler = torch.amp.GradScaler(model.device.type) if config.precision == "fp16" else None
        self.averaged = None
        if config.ema:
            ema = torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema)
            self.averaged = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=ema)
            self.averaged.update_parameters(model)  # the initial weights are the first sample of the average
        self.kept = self.averaged.module if self.averaged else model  # the weights validated, saved and tested
        self.best_state: dict | None = None
        self.best_loss = math.inf
        self.evals_without_gain = 0

    def step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], share: float = 1.0) -> float:
        loss = train_step(self.stepped, self.optimizer, *batch, self.config.clip, self.config.precision, self.scaler,
                          self.positive_weight, share)
        self.scheduler.step()
        if self.averaged:
            self.averaged.update_parameters(self.model)
        return loss

    def validate(self, reviews: EncodedReviews) -> tuple[TestReport, bool]:
        """Score the kept weights; keep them when their loss is the best so far. (report, improved)."""
        report = evaluate(self.kept, reviews)
        improved = report.loss < self.best_loss
        if improved:
            self.best_loss, self.evals_without_gain = report.loss, 0
            self.keep()
        else:
            self.evals_without_gain += 1
        return report, improved

    def keep(self) -> None:
        self.best_state = stored(self.kept.state_dict())


def train(
    config: TrainConfig | None = None,
    model_config: ModelConfig | None = None,
    data: str | Path = "sample",
    out: str | Path = CHECKPOINT_DIR / "model.pt",
    stop: threading.Event | None = None,
) -> Iterator[TrainEvent]:
    """Train on `data` (a bundled data set's name, or a file), keep the checkpoint with the best validation loss at
    `out`, end with a test report (and one per source when `data` has several).

    Setting `stop` ends the run after the current batch; the best checkpoint so far is kept and tested. With
    `config.refit` nothing is validated: the run trains its epochs on the training and validation splits and keeps
    the last (averaged) weights.
    """
    config = (config or TrainConfig()).validate()
    stop = stop or threading.Event()
    # A gradient that vanishes over a long review reaches subnormal floats, which some x86 CPUs compute ~100 times
    # slower. Flushed to zero before this thread's first parallel work, its worker threads inherit the setting.
    torch.set_flush_denormal(True)
    started = time.perf_counter()
    rank, world = _distributed()
    _check_distributed(config, world)

    yield Preparing(f"Reading and tokenizing {data_name(data)} …")
    try:
        prepared = _prepare_in_turn(data, config, stop, rank, world)
        model_config = replace(model_config or ModelConfig(), vocab_size=len(prepared.vocab)).validate()
        vectors, model_config, said = _word_vectors(config, prepared, model_config, stop if world == 1 else None)
    except Stopped:
        yield Finished(None, None, True, "stopped while preparing the data: nothing was trained or saved", 0,
                       time.perf_counter() - started, world)
        return
    device = pick_device(config.device)
    how = "loaded from cache" if prepared.corpus.from_cache else "tokenized"
    yield Preparing(
        f"{how}: {prepared.corpus.report.summary()}; split {prepared.origin['train']:,} / {len(prepared.val):,} / "
        f"{len(prepared.test):,}{' (training on train + validation)' if config.refit else ''}; "
        f"vocabulary {len(prepared.vocab):,} tokens{said}; training on {describe_device(device)}"
    )

    run = _Run(config, model_config, prepared, Path(out), stop, rank, world, device, vectors)
    if config.pretrain_epochs:
        projection = yield from pretrain(run.model, run.reviews, config, run.rng, stop, world)
        if config.keep_language_model and projection is not None:
            run.keep_language_model(projection)
        if world > 1:  # before DDP would copy rank 0's weights over any difference
            _check_replicas(run.model, world, "pre-training")
    run.start_fit()
    while run.reason == "finished" and run.step < run.total_steps and not _shared_flag(stop.is_set(), world):
        yield from run.epoch()
    yield from run.finish(started)


def _word_vectors(config: TrainConfig, prepared: PreparedData, model_config: ModelConfig,
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


def _check_distributed(config: TrainConfig, world: int) -> None:
    """ConfigError for the settings a run split between `world` processes cannot honour."""
    if world > 1 and config.batch_size < world:
        raise ConfigError(f"batch_size ({config.batch_size}) is split between {world} ranks: make it at least {world}")


def _prepare_in_turn(data: str | Path, config: TrainConfig, stop: threading.Event, rank: int, world: int
                     ) -> PreparedData:
    """`prepare_data`, rank 0 first: it tokenizes and writes the cache, which the other ranks then load."""
    if world > 1 and rank != 0:
        torch.distributed.barrier()
    prepared = prepare_data(data, config, stop)
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    return prepared


class _Run:
    """One training run's model, data and progress: its epochs, then its test and checkpoint."""

    def __init__(self, config: TrainConfig, model_config: ModelConfig, prepared: PreparedData, out: Path,
                 stop: threading.Event, rank: int, world: int, device: torch.device,
                 vectors: WordVectors | None = None) -> None:
        self.config, self.model_config, self.prepared, self.out, self.stop = config, model_config, prepared, out, stop
        self.rank, self.world, self.main = rank, world, rank == 0
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.reviews = prepared.train
        self.sentences, self.sentence_owner = prepared.sentences, prepared.sentence_owner
        self.sentence_weights = (None if self.sentences is None
                                 else sentence_weights(self.sentences, prepared.vocab, config))
        self.model = SentimentNet(model_config).to(device)
        self.language_model: tuple[dict, dict] | None = None  # (weights, projection) as pre-training left them
        if vectors is not None:
            vectors.copy_into(self.model.embedding)
        if config.freeze_embedding:
            self.model.embedding.weight.requires_grad_(False)
        self.step, self.epochs_done, self.reviews_seen, self.train_seconds, self.reason = 0, 0, 0, 0.0, "finished"

    def start_fit(self) -> None:
        """The classifier's optimiser, schedule and kept weights, sized to the run's steps."""
        config, prepared = self.config, self.prepared
        owners = len(np.unique(self.sentence_owner)) if config.sentences and self.sentence_owner is not None else 0
        sentences = config.sentences * owners  # one sentence drawn from each review that has any, each time
        self.total_steps = math.ceil((len(self.reviews) + sentences) / config.batch_size) * config.epochs
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        positives = int(prepared.train.labels.sum())  # of the whole training split, so that every rank weighs alike
        weight = (len(prepared.train) - positives) / max(1, positives) if config.balance else 1.0
        self.fit = _Fit(self.model, config, self.total_steps, self.world, weight)
        self.model.train()

    def save(self, metrics: dict) -> None:
        config = {**asdict(self.config), "vectors": Path(self.config.vectors).name}  # not a path of this machine
        save_checkpoint(self.out, Checkpoint(self.model_config, config, self.prepared.vocab,
                                             self.fit.best_state, metrics, self.prepared.origin))
        # Its language model goes beside it, in lm/ (not a classifier: its head is untrained, so no checkpoint list
        # offers it); one left by an earlier run of the same name would no longer match it.
        kept = language_model_path(self.out)
        if self.language_model is None:
            kept.unlink(missing_ok=True)
            return
        weights, projection = self.language_model
        save_checkpoint(kept, Checkpoint(self.model_config, config, self.prepared.vocab, weights, {},
                                         self.prepared.origin,
                                         language_model={f"projection.{k}": v for k, v in projection.items()}))

    def keep_language_model(self, projection: torch.nn.Linear) -> None:
        """Hold the model as pre-training left it, with its output projection, until the checkpoint is saved."""
        self.language_model = (stored(self.model.state_dict()), stored(projection.state_dict()))

    def epoch(self) -> Iterator[TrainEvent]:
        """One pass over the training reviews and this epoch's sentences; validates where the config says."""
        config, fit = self.config, self.fit
        self.epochs_done += 1
        reviews = self.reviews
        for _ in range(config.sentences):
            reviews = reviews.extended(one_sentence_each(self.sentences, self.sentence_owner, self.rng,
                                                         self.sentence_weights))
        batches = list(rank_share(length_bucketed_batches(reviews.lengths, config.batch_size, self.rng), self.rank,
                                  self.world))
        for i, (whole, rows, counted) in enumerate(batches):
            if _shared_flag(self.stop.is_set(), self.world):
                self.reason = "stopped"
                return
            tick = time.perf_counter()
            loss = fit.step(reviews.batch(rows), share=counted * len(rows) * self.world / len(whole))
            self.step += 1
            self.reviews_seen += len(whole)
            self.train_seconds += time.perf_counter() - tick
            if self.main:
                yield Step("train", self.step, self.total_steps, self.epochs_done, loss, fit.scheduler.get_last_lr()[0],
                           self.reviews_seen / self.train_seconds,
                           self.train_seconds / self.step * (self.total_steps - self.step))
            last_step = self.step >= self.total_steps
            if not config.refit and (last_step or i == len(batches) - 1
                                     or (config.eval_every and self.step % config.eval_every == 0)):
                yield from self.validate()
            if last_step or self.reason != "finished":
                return

    def validate(self) -> Iterator[Evaluated]:
        """Score the kept weights on the validation split (rank 0), save them when best, and stop early together."""
        fit = self.fit
        if self.main:
            report, improved = fit.validate(self.prepared.val)
            if improved:
                self.save({"step": self.step, "val_loss": report.loss, "val_accuracy": report.accuracy})
            yield Evaluated(self.step, self.epochs_done, report.loss, report.accuracy, improved)
        if _shared_flag(bool(self.config.patience) and fit.evals_without_gain >= self.config.patience, self.world):
            self.reason = "early stop"

    def finish(self, started: float) -> Iterator[Finished]:
        """Check the replicas agree, test the best weights (rank 0) and save them with the test report."""
        reason = "stopped" if self.stop.is_set() else self.reason
        if self.world > 1:
            _check_replicas(self.model, self.world)
        seconds = time.perf_counter() - started
        if not self.main:
            yield Finished(None, None, reason == "stopped", reason, self.step, seconds, self.world)
            return
        if self.step == 0:
            yield Finished(None, None, True, "stopped before the first training step: nothing was trained or saved", 0,
                           seconds, self.world)
            return
        fit, prepared = self.fit, self.prepared
        if fit.best_state is None:  # a refit, or stopped before the first validation: keep the weights as they are
            fit.keep()
        self.model.load_state_dict(fit.best_state)
        logits = score(self.model, prepared.test)
        report = TestReport.of(logits, prepared.test.labels)
        sources = by_source(prepared.corpus, prepared.test_rows, logits)
        self.save({"best_val_loss": fit.best_loss if fit.best_loss < math.inf else None, "test": asdict(report),
                   "steps": self.step,
                   **({"test_by_source": {name: asdict(r) for name, r in sources.items()}} if sources else {})})
        yield Finished(self.out, report, reason == "stopped", reason, self.step, time.perf_counter() - started,
                       self.world, sources)
