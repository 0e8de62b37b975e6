"""bench quality: the recipe, trained once per seed, beside TF-IDF + logistic regression trained on the same reviews.

Both are scored on the same sets: the sample's test split (balanced; the figure every earlier model compares on),
every source's held-out test reviews, the typed sentences (whole, with a negation word and without, and by kind),
and the short texts of the sample's validation split. The baseline reads the same tokens as the LSTM (our one
encoding path, `n't` included) and its C is chosen on the validation split, as the recipe was.

bench curve: the same two trained on nested shares of the training reviews, scored on the same held-out reviews.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data.corpus import TokenizedCorpus, tokenize_files
from ..data.preprocessing import NEGATIONS, tokenize_review
from ..data.sets import Splits, split_by_source, typed_sentences
from ..model.predictor import Predictor, load_predictor
from ..model.scoring import score
from ..train.loop import train
from ..train.presets import PRESETS
from .measure import Row


def has_negation(tokens: list[str]) -> bool:
    return not NEGATIONS.isdisjoint(tokens)


def short_validation_texts(corpus: TokenizedCorpus, rows: np.ndarray, max_len: int, longest: int = 15
                           ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The titles and sentences of at most `longest` tokens of the reviews `rows` (the validation split), their
    tokens joined by spaces, each labelled as its review, and whether each holds a negation word: real short texts
    to choose a recipe on, where the typed sentences are a test set."""
    starts, lengths, review = corpus.sentences(rows, max_len)
    short = lengths <= longest
    lexicon = np.array(corpus.lexicon, dtype=object)
    texts = [lexicon[corpus.token_ids[a : a + n]] for a, n in zip(starts[short], lengths[short])]
    negated = np.array([has_negation(tokens) for tokens in texts])
    return [" ".join(tokens) for tokens in texts], corpus.labels[rows][review[short]], negated


def mcnemar_p(a_right: np.ndarray, b_right: np.ndarray) -> float:
    """Exact two-sided McNemar test: the chance of a split of the discordant pairs at least this uneven if both
    models were equally good (a binomial test with p = 1/2 on the pairs only one of them gets right)."""
    only_a, only_b = int((a_right & ~b_right).sum()), int((~a_right & b_right).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


@dataclass
class EvalSet:
    """Labelled items to score: corpus rows (scored exactly as in training) or texts (read like typed input)."""

    labels: np.ndarray
    rows: np.ndarray | None = None
    texts: list[str] | None = None
    target: str = ""  # what the recipe's mean over the seeds must reach, in words
    reaches: Callable[[float, float], bool] | None = None  # (recipe %, baseline %) → the target is met


AHEAD = dict(target="> baseline", reaches=lambda recipe, baseline: recipe > baseline)


def predicted_positive(predictor: Predictor, corpus: TokenizedCorpus, item: EvalSet) -> np.ndarray:
    if item.rows is not None:
        logits = score(predictor.model, corpus.encode(predictor.vocab, item.rows, predictor.max_len)).numpy()
        return logits > 0
    return np.asarray(predictor.predict(item.texts)) > 0.5


def words_reader(corpus: TokenizedCorpus) -> Callable[[np.ndarray], list[str]]:
    """Corpus rows → each row's tokens joined by spaces: what the baseline reads of them."""
    lexicon = np.array(corpus.lexicon, dtype=object)

    def words_of(rows: np.ndarray) -> list[str]:
        return [" ".join(lexicon[corpus.token_ids[corpus.offsets[r] : corpus.offsets[r + 1]]]) for r in rows]

    return words_of


def words_in(item: EvalSet, words_of: Callable[[np.ndarray], list[str]]) -> list[str]:
    """What the baseline reads of a set: its rows' tokens, or its texts tokenized as typed input is."""
    return words_of(item.rows) if item.rows is not None else [" ".join(tokenize_review(t)) for t in item.texts]


class Baseline:
    """TF-IDF over 1- and 2-grams of our tokens, then logistic regression."""

    def __init__(self, words: list[str], labels: np.ndarray, C: float) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False,
                                          ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        self.classifier = LogisticRegression(C=C, max_iter=2000).fit(self.vectorizer.fit_transform(words), labels)

    def predicted_positive(self, words: list[str]) -> np.ndarray:
        return self.classifier.predict(self.vectorizer.transform(words)) == 1


def bench_quality(args: argparse.Namespace) -> list[Row]:
    """The recipe (`--preset` on its data, or `--data`; trained once per `--seeds`) against the baseline on every set
    named in the module's docstring; the shipped checkpoint on the same sets. With `--refit` both train on the
    training and validation splits together (the validation short texts then go unscored)."""
    preset = PRESETS[args.preset]
    data = args.data or preset.data
    corpus = tokenize_files(data, limit=preset.train.limit or None)
    splits = split_by_source(corpus.sizes)
    words_of = words_reader(corpus)

    sets = held_out_sets(corpus, splits.test, preset.train.max_len, splits.val if not args.refit else None)
    words = {name: words_in(item, words_of) for name, item in sets.items()}

    baseline, C, trained_on = _chosen_baseline(corpus, splits, words_of, args.baseline_c, args.refit)
    baseline_says = {name: baseline.predicted_positive(words[name]) for name in sets}
    baseline_right = {name: baseline_says[name] == s.labels for name, s in sets.items()}
    recipe = f"{args.preset}{', refit' if args.refit else ''}"
    rows, seeds = _train_seeds(args, data, corpus, sets, recipe)
    n = len(seeds)
    baseline_name = f"TF-IDF + LR, C={C:g}, trained on {len(trained_on):,}"
    test = [float((says[SAMPLE_TEST] == sets[SAMPLE_TEST].labels).mean() * 100) for _, _, says, _ in seeds]
    rows.append(Row(stage="quality", name=f"{recipe}, spread of the {n} seeds' accuracy on {SAMPLE_TEST} (max − min)",
                    value=float(np.ptp(test)), unit="points"))
    for name, item in sets.items():
        mean = float(np.mean([(says[name] == item.labels).mean() for _, _, says, _ in seeds]) * 100)
        reference = float(baseline_right[name].mean() * 100)
        met = item.reaches(mean, reference) if item.reaches else None
        label = f"{name} ({baseline_name})" if name == SAMPLE_TEST else f"{name} (TF-IDF + LR)"
        rows.append(Row(stage="quality", name=f"{recipe}, mean of {n} seeds, {label}", value=mean, unit="%",
                        reference=reference, target=item.target, met=met))
    share = float(np.mean([says[SAMPLE_TEST].mean() for _, _, says, _ in seeds]) * 100)
    truth = float(sets[SAMPLE_TEST].labels.mean() * 100)
    rows.append(Row(stage="quality", name=f"{recipe}, mean of {n} seeds, {SAMPLE_TEST}: predicted positive (truly: "
                    f"{truth:.1f}%; TF-IDF + LR)", value=share, unit="%",
                    reference=float(baseline_says[SAMPLE_TEST].mean() * 100), target="within 3 points",
                    met=abs(share - truth) <= 3.0))
    _, kept_seed, kept, _ = min(seeds, key=_validation_loss)
    kept_name = f"{recipe}, seed {kept_seed}" + ("" if args.refit else " (lowest validation loss)")
    rows.append(_mcnemar_row(kept_name, kept[TYPED] == sets[TYPED].labels, baseline_right[TYPED]))
    if args.checkpoint.is_file():
        shipped = load_predictor(args.checkpoint, args.device)
        right = {name: predicted_positive(shipped, corpus, s) == s.labels for name, s in sets.items()}
        rows += [Row(stage="quality", name=f"{args.checkpoint.name}: {name}", value=float(right[name].mean() * 100),
                     unit="%", reference=float(baseline_right[name].mean() * 100)) for name in (SAMPLE_TEST, TYPED)]
        rows.append(_mcnemar_row(args.checkpoint.name, right[TYPED], baseline_right[TYPED]))
    return rows


SAMPLE_TEST = "the sample's test split"
TYPED = "typed sentences"


def _chosen_baseline(corpus: TokenizedCorpus, splits: Splits, words_of: Callable[[np.ndarray], list[str]],
                     tried_c: list[float], refit: bool = False) -> tuple[Baseline, float, np.ndarray]:
    """The baseline with its C chosen among `tried_c` on the validation split (with `refit` then trained on train +
    validation), its C, and the rows it trained on."""
    val_words, train_words = words_of(splits.val), words_of(splits.train)
    candidates = [Baseline(train_words, corpus.labels[splits.train], C) for C in tried_c]
    accuracy = [(b.predicted_positive(val_words) == corpus.labels[splits.val]).mean() for b in candidates]
    best = int(np.argmax(accuracy))
    if not refit:
        return candidates[best], tried_c[best], splits.train
    trained_on = np.concatenate([splits.train, splits.val])
    return Baseline(train_words + val_words, corpus.labels[trained_on], tried_c[best]), tried_c[best], trained_on


def _validation_loss(seed: tuple) -> tuple[float, int]:
    """How `train --seeds` ranks runs: the lowest validation loss (a refit has none), then the lowest seed."""
    return (math.inf if seed[0] is None else seed[0], seed[1])


def _train_seeds(args: argparse.Namespace, data: str | Path, corpus: TokenizedCorpus, sets: dict[str, EvalSet],
                 recipe: str) -> tuple[list[Row], list[tuple]]:
    """The recipe trained once per seed: its rows, and per seed (validation loss, seed, predictions per set,
    checkpoint). With --save-best the seed `train --seeds` would keep is written there."""
    preset, rows, seeds = PRESETS[args.preset], [], []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            config = replace(preset.train, seed=seed, device=args.device, refit=args.refit)
            finished = list(train(config, preset.model, data, Path(folder) / f"seed{seed}.pt"))[-1]
            print(f"  quality: seed {seed} trained in {finished.seconds:.0f} s", flush=True)
            predictor = load_predictor(finished.checkpoint, args.device)
            says = {name: predicted_positive(predictor, corpus, s) for name, s in sets.items()}
            seeds.append((predictor.checkpoint.metrics.get("best_val_loss"), seed, says, finished.checkpoint))
            rows += [Row(stage="quality", name=f"{recipe}, seed {seed}: test accuracy ({finished.report.n:,} reviews; "
                         f"trained on {predictor.checkpoint.data['train']:,}; {finished.seconds:.0f} s)",
                         value=finished.report.accuracy * 100, unit="%"),
                     Row(stage="quality", name=f"{recipe}, seed {seed}: {TYPED} ({len(sets[TYPED].labels)})",
                         value=float((says[TYPED] == sets[TYPED].labels).mean() * 100), unit="%")]
        if args.save_best:
            kept_path = min(seeds, key=_validation_loss)[3]
            partial = args.save_best.with_name(f".{args.save_best.name}.tmp")
            shutil.copyfile(kept_path, partial)
            os.replace(partial, args.save_best)  # atomic: the old checkpoint or the new one, never half of one
    return rows, seeds


def _mcnemar_row(who: str, right: np.ndarray, baseline_right: np.ndarray) -> Row:
    only, only_baseline = int((right & ~baseline_right).sum()), int((~right & baseline_right).sum())
    return Row(stage="quality", name=f"{who}: exact McNemar p against TF-IDF + LR on the {TYPED} ({only} right only "
               f"here, {only_baseline} only there)", value=mcnemar_p(right, baseline_right), unit="p", target="< 0.05",
               met=mcnemar_p(right, baseline_right) < 0.05 and only > only_baseline)


def held_out_sets(corpus: TokenizedCorpus, test: np.ndarray, max_len: int, val: np.ndarray | None
                  ) -> dict[str, EvalSet]:
    """Every set the recipe and the baseline are both scored on, by the name its rows carry."""
    source = corpus.source_of(test)
    # The tutorial's own figure, with 800,000 training reviews on a GPU; and a lead a person would notice.
    sets = {SAMPLE_TEST: EvalSet(labels=corpus.labels[test[source == 0]], rows=test[source == 0],
                                 target="≥ 93.9, +2.5",
                                 reaches=lambda recipe, baseline: recipe >= 93.9 and recipe >= baseline + 2.5)}
    if len(corpus.sources) > 1:
        sets[f"the test split, every source ({len(test):,})"] = EvalSet(labels=corpus.labels[test], rows=test)
        for k, name in enumerate(corpus.sources[1:], start=1):
            mine = test[source == k]
            sets[f"held-out {name} reviews ({len(mine):,})"] = EvalSet(labels=corpus.labels[mine], rows=mine)
    texts, labels, kinds = typed_sentences()
    negated = np.array([has_negation(tokenize_review(t)) for t in texts])
    sets[TYPED] = EvalSet(labels=labels, texts=texts, **AHEAD)
    groups = {f"with a negation word ({negated.sum()})": (negated, AHEAD), f"without one ({(~negated).sum()})": (~negated, {})}
    for kind in dict.fromkeys(k for k in kinds if k):
        mine = np.array([k == kind for k in kinds])
        groups[f"of the kind {kind} ({mine.sum()})"] = (mine, {})
    for what, (mine, target) in groups.items():
        sets[f"{TYPED} {what}"] = EvalSet(labels=labels[mine], texts=[t for t, m in zip(texts, mine) if m], **target)
    if val is not None:  # a refit trains on the validation split: its texts would measure nothing
        sample_val = val[corpus.source_of(val) == 0]
        short, short_labels, negated = short_validation_texts(corpus, sample_val, max_len)
        # The positive ones among the negated texts ("no complaints", "not bad"): few in reviews, where a negation
        # mostly marks a complaint, so a model that follows the data reads them as negative.
        praise = negated & (short_labels == 1)
        for what, mine, target in ((f"the sample's validation titles and sentences of ≤ 15 tokens ({len(short):,})",
                                    np.ones(len(short), dtype=bool), {}),
                                   (f"those with a negation word ({negated.sum():,})", negated, {}),
                                   (f"the positive ones of those ({praise.sum():,})", praise,
                                    dict(target="≥ 70%", reaches=lambda recipe, _: recipe >= 70.0))):
            sets[what] = EvalSet(labels=short_labels[mine], texts=[t for t, m in zip(short, mine) if m], **target)
    return sets


def bench_curve(args: argparse.Namespace) -> list[Row]:
    """The learning curve: the recipe and the baseline trained on a share of each source's training reviews (`--shares`,
    nested: a smaller share lies within every larger one), scored on the same held-out reviews, each seed's run once
    per share. What each gained from the second-largest share to the largest (a doubling, by default) says what more
    reviews would buy."""
    preset = PRESETS[args.preset]
    data = args.data or preset.data
    corpus = tokenize_files(data, limit=preset.train.limit or None)
    full = split_by_source(corpus.sizes)
    sample_val = full.val[corpus.source_of(full.val) == 0]
    sets = {name: s for name, s in held_out_sets(corpus, full.test, preset.train.max_len, None).items()
            if name in (SAMPLE_TEST, TYPED) or name.startswith("the test split, every source")}
    sets[f"the sample's validation split ({len(sample_val):,})"] = EvalSet(labels=corpus.labels[sample_val],
                                                                          rows=sample_val)
    words_of = words_reader(corpus)
    words = {name: words_in(item, words_of) for name, item in sets.items()}
    shares, rows, points = sorted(set(args.shares)), [], []  # points: per share, per set (recipe %, baseline %)
    seeds = len(dict.fromkeys(args.seeds))
    for share in shares:
        splits = split_by_source(corpus.sizes, train_share=share)
        baseline = _chosen_baseline(corpus, splits, words_of, args.baseline_c)[0]
        recipe, trained_on = _recipe_accuracy(args, data, corpus, sets, share)
        baseline_right = {name: baseline.predicted_positive(words[name]) == item.labels for name, item in sets.items()}
        points.append({name: (recipe[name], float(baseline_right[name].mean() * 100)) for name in sets})
        rows += [Row(stage="curve", name=f"{args.preset}, {share * 100:g}% of the training reviews ({trained_on:,}), "
                     f"mean of {seeds} seeds: {name} (TF-IDF + LR)", value=points[-1][name][0], unit="%",
                     reference=points[-1][name][1])
                 for name in sets]
    if len(points) > 1:
        last, before = (f"{share * 100:g}%" for share in (shares[-1], shares[-2]))
        rows += [Row(stage="curve", name=f"{args.preset}: points gained from {before} to {last} of the training "
                     f"reviews, {name} (TF-IDF + LR)", value=points[-1][name][0] - points[-2][name][0], unit="points",
                     reference=points[-1][name][1] - points[-2][name][1]) for name in sets]
    return rows


def _recipe_accuracy(args: argparse.Namespace, data: str | Path, corpus: TokenizedCorpus, sets: dict[str, EvalSet],
                     share: float) -> tuple[dict[str, float], int]:
    """The recipe trained on `share` of the training reviews once per seed: its mean accuracy on each set, and how
    many reviews it trained on."""
    right: dict[str, list[float]] = {name: [] for name in sets}
    with tempfile.TemporaryDirectory() as folder:
        for seed in dict.fromkeys(args.seeds):
            config = replace(PRESETS[args.preset].train, seed=seed, device=args.device, train_share=share)
            finished = list(train(config, PRESETS[args.preset].model, data, Path(folder) / f"seed{seed}.pt"))[-1]
            print(f"  curve: {share * 100:g}% of the training reviews, seed {seed} trained in {finished.seconds:.0f} s",
                  flush=True)
            predictor = load_predictor(finished.checkpoint, args.device)
            for name, item in sets.items():
                right[name].append(float((predicted_positive(predictor, corpus, item) == item.labels).mean() * 100))
    return {name: float(np.mean(scores)) for name, scores in right.items()}, predictor.checkpoint.data["train"]
