"""The check by ablation: hold a unit at its mean and see what the classifier loses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model.network import Clamp
from ..model.predictor import Predictor
from ..model.scoring import score
from .atlas import Progress, UnitAtlas, silent

ABLATION_SIZES = (1, 5, 20)


RANDOM_DRAWS = 3


@dataclass
class AblationRow:
    ablated: str  # "best" or "random"
    k: int
    accuracy: float  # the mean over the draws for random units
    lowest: float  # the range over the draws (equal to accuracy for the best units)
    highest: float
    units: list[int]  # the best units, or the first draw's


@dataclass
class Ablation:
    """The whole model, and the model with units held at their corpus mean at every step, on the whole corpus."""

    whole: float
    best_unit: int
    best_alone: float  # on the held-out half
    whole_on_half: float  # the whole model on that half
    reviews: int
    rows: list[AblationRow]

    def row(self, ablated: str, k: int) -> AblationRow:
        return next(r for r in self.rows if r.ablated == ablated and r.k == k)

    def verdict(self) -> str:
        """What the ablation says about the best single unit, in sentences: a cost is accuracy lost, in points."""
        def points(accuracy: float) -> str:
            return f"{100 * (self.whole - accuracy):.2f} points"

        one, random_one = self.row("best", 1), self.row("random", 1)
        cost, random_cost = self.whole - one.accuracy, self.whole - random_one.lowest
        sentences = [(f"Unit {self.best_unit} predicts best alone: {self.best_alone:.1%} on the held-out half, where "
                      f"the whole model reads {self.whole_on_half:.1%}. On all {self.reviews:,} reviews the whole model "
                      f"reads {self.whole:.1%}; with unit {self.best_unit} held at its mean at every step it loses "
                      f"{points(one.accuracy)} (a random unit: at most {points(random_one.lowest)}).")]
        for k in sorted({r.k for r in self.rows if r.k > 1}):
            best, random = self.row("best", k), self.row("random", k)
            sentences.append(f"The best {k} units together cost {points(best.accuracy)}; {k} random units between "
                             f"{points(random.highest)} and {points(random.lowest)}.")
        if cost < 0.01:
            sentences.append("So the model barely depends on the unit that predicts best"
                             + (", though it leans on it more than on a random unit" if cost > random_cost else "")
                             + ": what the unit carries is carried by other units too (Donnelly & Roegiest 2019 "
                             "found the same).")
        else:
            sentences.append("So the model does depend on the unit that predicts best: without it, it loses more than "
                             "a point.")
        return " ".join(sentences)


def ablated_accuracy(predictor: Predictor, atlas: UnitAtlas, units: np.ndarray) -> float:
    """The model's accuracy on the atlas's reviews with `units` held at their corpus mean at every step (none held:
    the plain model, read one step at a time)."""
    values = torch.full((atlas.units,), float("nan"))
    values[torch.as_tensor(units, dtype=torch.long)] = torch.from_numpy(atlas.read.mean_state[units])
    clamp = Clamp(atlas.layer, atlas.direction == "backward", values)
    logits = score(predictor.model, atlas.reviews, clamp=clamp)
    return float(((logits > 0).numpy() == atlas.labels.astype(bool)).mean())


def ablate(predictor: Predictor, atlas: UnitAtlas, sizes: tuple[int, ...] = ABLATION_SIZES, draws: int = RANDOM_DRAWS,
           seed: int = 0, progress: Progress = silent) -> Ablation:
    """Hold the best k units (by accuracy alone), then k random units (`draws` times), at their mean. Kept with the
    atlas."""
    sizes = tuple(k for k in sizes if k <= atlas.units)
    if (sizes, draws, seed) not in atlas.ablations:
        atlas.ablations[sizes, draws, seed] = _ablate(predictor, atlas, sizes, draws, seed, progress)
    return atlas.ablations[sizes, draws, seed]


def _ablate(predictor: Predictor, atlas: UnitAtlas, sizes: tuple[int, ...], draws: int, seed: int,
            progress: Progress) -> Ablation:
    rng = np.random.default_rng(seed)
    runs = [("best", k, atlas.best(k)) for k in sizes]
    runs += [("random", k, rng.choice(atlas.units, size=k, replace=False)) for k in sizes for _ in range(draws)]
    whole = float(((atlas.read.probabilities > 0.5) == atlas.labels.astype(bool)).mean())  # as a logit above 0
    results: dict[tuple[str, int], list[tuple[float, np.ndarray]]] = {}
    for done, (ablated, k, units) in enumerate(runs):
        progress(done / len(runs), f"holding the {ablated} {k} unit(s) at their mean ({done + 1} of {len(runs)})")
        results.setdefault((ablated, k), []).append((ablated_accuracy(predictor, atlas, units), units))
    rows = [AblationRow(ablated=ablated, k=k, accuracy=float(np.mean([a for a, _ in found])),
                        lowest=min(a for a, _ in found), highest=max(a for a, _ in found),
                        units=[int(u) for u in found[0][1]])
            for (ablated, k), found in results.items()]
    best = int(atlas.best(1)[0])
    return Ablation(whole=whole, best_unit=best, best_alone=float(atlas.accuracy[best]),
                    whole_on_half=atlas.model_accuracy, reviews=len(atlas.rows), rows=rows)
