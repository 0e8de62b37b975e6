"""The reference pipeline (`../shared/reference.md`, the tutorial this project grew from), re-implemented as it was
written, so that the benchmark can run it beside ours: a per-review Python loop to clean, tokenize and left-pad every
review to 200 tokens, a model whose linear layer runs on every time step, a hidden state carried across batches."""
from __future__ import annotations

import bz2
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from nltk.tokenize import NLTKWordTokenizer

_URL = re.compile(r"([^ ]+(?<=\.[a-z]{3}))")


def reference_preprocess(path: Path, limit: int | None, max_len: int = 200,
                         vocab_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read, clean, tokenize, count, index and left-pad one review at a time (its `word_tokenize` without the punkt
    sentence splitter, whose data it would download). Words are counted over `vocab_rows` (default: all)."""
    tokenizer = NLTKWordTokenizer()
    texts, labels = [], []
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(texts) >= limit:
                break
            labels.append(0 if line.split(" ")[0] == "__label__1" else 1)
            texts.append(line.split(" ", 1)[1][:-1].lower())
    tokenized = []
    for text in texts:
        text = re.sub(r"\d", "0", text)
        if "www." in text or "http:" in text or "https:" in text or ".com" in text:
            text = _URL.sub("<url>", text)
        tokenized.append(tokenizer.tokenize(text))
    words = Counter()
    for tokens in (tokenized if vocab_rows is None else [tokenized[i] for i in vocab_rows]):
        for word in tokens:
            words[word] += 1
    words = {k: v for k, v in words.items() if v > 1}
    vocab = ["_PAD", "_UNK", *sorted(words, key=words.get, reverse=True)]
    word2idx = {w: i for i, w in enumerate(vocab)}
    indexed = [[word2idx[w] if w in word2idx else 0 for w in tokens] for tokens in tokenized]  # its bug: unknown → _PAD
    features = np.zeros((len(indexed), max_len), dtype=int)
    for i, review in enumerate(indexed):
        if len(review) != 0:
            features[i, -len(review):] = np.array(review)[:max_len]
    return features, np.array(labels), word2idx


class ReferenceNet(nn.Module):
    """The tutorial's model: sigmoid(linear) on every step's output, of which only the last is kept."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_dim: int, n_layers: int, drop_prob: float = 0.5):
        super().__init__()
        self.hidden_dim, self.n_layers = hidden_dim, n_layers
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, n_layers, dropout=drop_prob if n_layers > 1 else 0.0, batch_first=True)
        self.dropout = nn.Dropout(drop_prob)
        self.fc = nn.Linear(hidden_dim, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]):
        batch_size = x.size(0)
        lstm_out, hidden = self.lstm(self.embedding(x), hidden)  # (B, 200, H)
        out = self.sigmoid(self.fc(self.dropout(lstm_out.contiguous().view(-1, self.hidden_dim))))  # (B * 200, 1)
        return out.view(batch_size, -1)[:, -1], hidden

    def init_hidden(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = next(self.parameters())
        shape = (self.n_layers, batch_size, self.hidden_dim)
        return weight.new_zeros(shape), weight.new_zeros(shape)


class ReferenceTrainer:
    """The tutorial's training step: Adam 0.005, BCE, clipping at 5, one hidden state carried across batches."""

    def __init__(self, model: ReferenceNet, batch: int) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
        self.criterion = nn.BCELoss()
        self.hidden = model.init_hidden(batch)

    def step(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.hidden = tuple(h.data for h in self.hidden)
        self.model.zero_grad()
        output, self.hidden = self.model(inputs, self.hidden)
        self.criterion(output.squeeze(), labels.float()).backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5)
        self.optimizer.step()


def reference_fit(features: np.ndarray, labels: np.ndarray, splits, vocab_size: int, epochs: int,
                  device: torch.device, sizes: tuple[int, int, int] = (400, 512, 2), batch: int = 400,
                  seed: int = 0) -> float:
    """The tutorial's training as written (embedding 400 → 2 × 512 and batch 400 by default, the best validation loss
    kept), then its test accuracy. Adapted only where it cannot run: the last, smaller batch of an epoch is dropped
    (the tutorial crashes on it), validation runs at each epoch end (its every-1000-steps never comes on a sample this
    size), and evaluation builds a hidden state per batch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ReferenceNet(vocab_size, *sizes).to(device)
    trainer = ReferenceTrainer(model, batch)

    def scored(rows: np.ndarray) -> tuple[float, float]:
        model.eval()
        losses, correct = [], 0
        with torch.no_grad():
            for start in range(0, len(rows), batch):
                part = rows[start : start + batch]
                output, _ = model(torch.from_numpy(features[part]).to(device), model.init_hidden(len(part)))
                target = torch.from_numpy(labels[part]).float().to(device)
                losses.append(trainer.criterion(output, target).item() * len(part))
                correct += int(((output > 0.5).float() == target).sum())
        model.train()
        return sum(losses) / len(rows), correct / len(rows)

    best_loss, best_state = float("inf"), None
    for _ in range(epochs):
        order = rng.permutation(splits.train)
        for start in range(0, len(order) - batch + 1, batch):
            rows = order[start : start + batch]
            trainer.step(torch.from_numpy(features[rows]).to(device), torch.from_numpy(labels[rows]).to(device))
        val_loss, _ = scored(splits.val)
        if val_loss < best_loss:
            best_loss, best_state = val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return scored(splits.test)[1]
