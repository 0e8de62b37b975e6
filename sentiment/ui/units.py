from __future__ import annotations

"""The Units tab: what single units of a layer learned across a corpus, checked by ablation, read token by token,
matched by a selected phrase, and steered."""

from pathlib import Path
from types import MappingProxyType

import gradio as gr
import numpy as np

from ..contract import CHECKPOINT, LAYER, REVIEW, UNIT, Choice, Number, Text
from ..explain.review import default_layer, layer_choices, parse_layer
from ..model.checkpoint import list_checkpoints
from ..model.predictor import Predictor
from ..plots.figure import short_token
from ..plots.memory import trajectories_figure
from ..plots.units import ablation_figure, unit_atlas_figure, unit_histogram_figure
from ..units.ablation import ablate
from ..units.atlas import SATURATION, UnitAtlas
from ..units.pages import UnitReview, describe_unit
from ..units.passages import find_passages
from ..units.steering import MAX_GENERATED, generate, language_model_file, steer
from .boundary import Upload, available_checkpoints, endpoint, serve, status_line
from .lab import Lab

INTRO = (
    "Which unit tracks sentiment, what makes a unit fire, and what happens if you turn it? The **atlas** reads a "
    "corpus once (the checkpoint's own test split, or a review file you upload) and describes every unit of a layer: "
    "the gap between the classes' mean final h and mean largest h, its accuracy **alone** (one threshold on its final "
    "h, chosen on half of the reviews and scored on the other half), the order in which it enters an L1-penalised "
    "logistic regression as the penalty loosens (Radford et al. 2017), and how often its gates are shut "
    f"(< {SATURATION[0]}) or open (> {SATURATION[1]}) (Karpathy, Johnson & Fei-Fei 2015). Click a row to open the unit.")
STATES = (("hidden state h", "hidden_state"), ("cell state c (LSTM)", "cell_state"))
STEER_RANGE = 10.0  # h lies in [-1, 1]; steering may push past it, as Radford et al. did
# The inputs of the tab's endpoints beside those every tab shares.
CORPUS = Upload("corpus", empty=None)  # none: the checkpoint's own test split
STATE = Choice("state", choices=tuple(value for _, value in STATES))
PHRASE = Text("phrase", most=1000, hint="type or select the words to match, e.g. 'not good'")
CONTEXT = Text("review", empty="")  # empty: the phrase is read alone
THRESHOLD = Number("threshold", -1.0, 1.0)
HELD_AT = Number("value", -STEER_RANGE, STEER_RANGE, empty=None)  # none: no clamp
PROMPT = Text("prompt", most=REVIEW.most, hint="type the start of a review, e.g. 'This blender is'")
SIZE = Number("value", 0.0, STEER_RANGE)
TOKENS = Number("tokens", 1, MAX_GENERATED, integer=True)
SEED = Number("seed", 0, 2**31 - 1, integer=True)
WHERE = MappingProxyType(dict(checkpoint=CHECKPOINT, layer=LAYER, corpus=CORPUS))  # the atlas every section reads


def chosen_layer(predictor: Predictor, layer: str) -> tuple[int, str]:
    """A layer field's value as (layer, direction); empty means the top layer."""
    return parse_layer(predictor, layer or default_layer(predictor))


def chosen_unit(predictor: Predictor, unit: int) -> int:
    """A unit of the checkpoint's layers (their width is the checkpoint's)."""
    return Number("unit", 0, predictor.model.config.hidden_size - 1, integer=True).check(unit)


def atlas_for(lab: Lab, checkpoint: Path, layer: str, corpus: Path | None, progress: gr.Progress | None = None
              ) -> tuple[Predictor, UnitAtlas]:
    """The checkpoint and its atlas of the layer over the corpus (computed once, with progress, then kept)."""
    layer, direction = chosen_layer(lab.checkpoints.predictor(checkpoint), layer)
    shown = (lambda share, what: progress(share, desc=what)) if progress is not None else (lambda share, what: None)
    return lab.checkpoints.atlas(checkpoint, layer, direction, corpus, shown)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def atlas_summary(atlas: UnitAtlas) -> str:
    best = int(atlas.best(1)[0])
    gap = float(atlas.gap(atlas.read.final)[best])
    cut = f" (the first ones: {atlas.cut:,} more left out to bound memory)" if atlas.cut else ""
    rank = int(atlas.l1_rank[best])
    return (f"**{atlas.checkpoint}, layer {atlas.layer + 1} {atlas.direction}**, {atlas.units} units, over "
            f"{atlas.corpus_name}: {len(atlas.rows):,} reviews{cut}.\n\n"
            f"**The sentiment unit: {best}.** Alone it reaches **{atlas.accuracy[best]:.1%}** on the held-out half "
            f"(the whole model: {atlas.model_accuracy:.1%}); its final h is {'higher' if gap > 0 else 'lower'} on "
            f"positive reviews (gap {gap:+.2f})"
            + (f"; it entered the L1 sweep {_ordinal(rank)}." if rank else ".")
            + " Whether the model *needs* it is another question: check it by ablation below.")


@endpoint(**WHERE)
def unit_atlas(lab: Lab, checkpoint: str = "default.pt", layer: str = "", corpus: dict | None = None,
               progress: gr.Progress = gr.Progress()):
    """Every unit of a layer over a corpus: class gaps, accuracy alone, L1 rank and gate saturation.

    Args:
        checkpoint: a checkpoint file name, e.g. "default.pt".
        layer: a checkpoint_layers value such as "0"; empty: the top layer.
        corpus: an uploaded review file (at most 20,000 reviews), or null for the checkpoint's own test split.

    Returns:
        a Markdown summary naming the unit that predicts best alone
        a plotly figure: every unit's class gap against its accuracy alone
        a table of every unit, the best alone first
    """
    _, atlas = atlas_for(lab, checkpoint, layer, corpus, progress)
    rows = atlas.rows_of_units()
    table = [[round(v, 4) if isinstance(v, float) else v for v in row.values()] for row in rows]
    figure = unit_atlas_figure(atlas.gap(atlas.read.final), atlas.accuracy, atlas.l1_rank)
    return atlas_summary(atlas), figure, gr.Dataframe(table, headers=list(rows[0]))


@endpoint(**WHERE)
def unit_ablation(lab: Lab, checkpoint: str = "default.pt", layer: str = "", corpus: dict | None = None,
                  progress: gr.Progress = gr.Progress()):
    """Check the best single units by ablation: accuracy with the best k units (k = 1, 5, 20) held at their corpus mean
    at every step, against k random units (three draws).

    Args:
        checkpoint: a checkpoint file name, e.g. "default.pt".
        layer: a checkpoint_layers value such as "0"; empty: the top layer.
        corpus: an uploaded review file, or null for the checkpoint's own test split.

    Returns:
        the verdict in Markdown: whether the model depends on the unit that predicts best
        a plotly figure of the accuracies
        a table: units held, k, accuracy, its range over the draws, the units
    """
    predictor, atlas = atlas_for(lab, checkpoint, layer, corpus, progress)
    result = ablate(predictor, atlas, progress=lambda share, what: progress(share, desc=what))
    rows = [["none (the whole model)", 0, round(result.whole, 4), round(result.whole, 4), round(result.whole, 4), ""]]
    rows += [[f"the {r.ablated} {r.k}", r.k, round(r.accuracy, 4), round(r.lowest, 4), round(r.highest, 4),
              ", ".join(map(str, r.units[:20]))] for r in result.rows]
    return result.verdict(), ablation_figure(result.whole, result.rows), rows


def highlighted(reviews: list[UnitReview], scale: float) -> list[tuple[str, float | None]]:
    """Reviews as (token, value / scale) pairs for one highlighted text, each opened by its label and prediction."""
    shown: list[tuple[str, float | None]] = []
    for review in reviews:
        verdict = f"[{'positive' if review.label else 'negative'} review, P(positive) {review.probability:.2f}]"
        shown.append((("\n\n" if shown else "") + verdict, None))
        shown += [(short_token(t), float(v) / scale) for t, v in zip(review.tokens, review.values)]
    return shown


@endpoint(**WHERE, unit=UNIT, state_name=STATE)
def unit_page(lab: Lab, checkpoint: str = "default.pt", layer: str = "", corpus: dict | None = None, unit: float = 0,
              state_name: str = "hidden_state", progress: gr.Progress = gr.Progress()):
    """One unit's page: its final h by class, and the reviews that drive it highest and lowest, token by token.

    Args:
        checkpoint: a checkpoint file name, e.g. "default.pt".
        layer: a checkpoint_layers value such as "0"; empty: the top layer.
        corpus: an uploaded review file, or null for the checkpoint's own test split.
        unit: the unit, from 0.
        state_name: "hidden_state" (h) or "cell_state" (c, an LSTM's).

    Returns:
        a Markdown summary of the unit
        a plotly figure: its final h, one histogram per class
        the five reviews where it reaches its highest values, each token with its value (h as is; c divided by the largest |c| shown)
        the five where it reaches its lowest
    """
    predictor, atlas = atlas_for(lab, checkpoint, layer, corpus, progress)
    page = describe_unit(predictor, atlas, chosen_unit(predictor, unit), state_name)
    scale = 1.0
    if page.state == "cell_state":
        scale = max(float(np.abs(r.values).max()) for r in page.up + page.down) or 1.0
    u, rank = page.unit, int(atlas.l1_rank[page.unit])
    shares = ", ".join(f"{gate} shut {shut[u]:.0%} / open {opened[u]:.0%}"
                       for gate, (shut, opened) in atlas.read.saturation.items())
    summary = (f"**Unit {u}** alone: {atlas.accuracy[u]:.1%} (positive when its final h is "
               f"{'above' if atlas.signs[u] > 0 else 'below'} {atlas.thresholds[u]:+.3f}); class gap "
               f"{atlas.gap(atlas.read.final)[u]:+.3f}; L1 rank {rank or 'none (never entered)'}."
               + (f" Gates: {shares}." if shares else "")
               + "\n\nThe reviews where its h reaches its highest and lowest values; tokens coloured by its "
               + ("h" if page.state == "hidden_state" else f"c divided by {scale:.2f}")
               + " after reading each one: the values of the Predict tab's gate trace for the same review and token.")
    figure = unit_histogram_figure(page.final, page.labels, u, float(atlas.thresholds[u]))
    return summary, figure, highlighted(page.up, scale), highlighted(page.down, scale)


def select_unit(event: gr.SelectData) -> int:
    """The unit of the atlas row clicked (the table may be sorted: the row's own unit column says which)."""
    return int(event.row_value[0])


@endpoint(**WHERE, review=CONTEXT, phrase=PHRASE, threshold=THRESHOLD)
def match_units(lab: Lab, checkpoint: str = "default.pt", layer: str = "", corpus: dict | None = None, review: str = "",
                 phrase: str = "", threshold: float = 0.3, progress: gr.Progress = gr.Progress()):
    """Select to match (LSTMVis): the units on over a phrase and off just before it, then the corpus passages where
    the most of them do the same.

    Args:
        checkpoint: a checkpoint file name, e.g. "default.pt".
        layer: a checkpoint_layers value such as "0"; empty: the top layer.
        corpus: an uploaded review file, or null for the checkpoint's own test split.
        review: the review the phrase is in; empty: the phrase is read alone.
        phrase: the words to match, e.g. "not good".
        threshold: a unit is on above it, -1 to 1.

    Returns:
        a Markdown summary: the units found
        a table of the best passages: units on, the review's label, the model's P(positive), the passage with the match in «»
    """
    predictor, atlas = atlas_for(lab, checkpoint, layer, corpus, progress)
    match = find_passages(predictor, atlas, review, phrase, threshold)
    selected = " ".join(match.tokens[match.span[0] : match.span[1]])
    if not match.units:
        return (f"No unit of layer {atlas.layer + 1} is above {threshold:g} on every token of «{selected}» and not "
                "above it just before: try a lower threshold."), []
    rows = [[p.units_on, "positive" if p.label else "negative", round(p.probability, 3),
             f"{' '.join(p.before)} «{' '.join(p.tokens)}» {' '.join(p.after)}".strip()] for p in match.passages]
    followed = "" if len(match.followed) == len(match.units) else \
        f" (the {len(match.followed)} with the widest margin are followed)"
    found = (f"The {len(rows)} passages of {atlas.corpus_name} where most of them do the same:" if rows else
             f"No passage of {atlas.corpus_name} has one of them on over {len(match.tokens[match.span[0]:match.span[1]])} "
             "tokens and off before.")
    return (f"**{len(match.units)} units** are above {threshold:g} on every token of «{selected}» and not above it "
            f"just before: {', '.join(map(str, match.units[:40]))}{' …' if len(match.units) > 40 else ''}{followed}. "
            + found), rows


def select_phrase(event: gr.SelectData) -> str:
    """The text selected in the review box."""
    return str(event.value)


@endpoint(review=REVIEW, checkpoint=CHECKPOINT, layer=LAYER, unit=UNIT, value=HELD_AT)
def clamp_predict(lab: Lab, review: str, checkpoint: str = "default.pt", layer: str = "", unit: float = 0,
                  value: float | None = 1.0):
    """Read a review with one unit's h held at a value at every step, beside the free reading.

    Args:
        review: the review text.
        checkpoint: a checkpoint file name, e.g. "default.pt".
        layer: a checkpoint_layers value such as "0"; empty: the top layer.
        unit: the unit to hold, from 0.
        value: the value to hold its h at, -10 to 10 (h itself lies in -1..1); null: no clamp.

    Returns:
        the probabilities of "positive" and "negative" with the unit held
        a Markdown summary: the prediction free and held
        a plotly figure: P(positive) after each token, free and held
    """
    predictor = lab.checkpoints.predictor(checkpoint)
    layer, direction = chosen_layer(predictor, layer)
    result = steer(predictor, layer, direction, review, chosen_unit(predictor, unit), value)
    held = "free" if value is None else f"unit {unit} held at {value:g}"
    summary = (f"Free: P(positive) = **{result.probability:.3f}**"
               + ("." if value is None else f"; with unit {unit} of layer {layer + 1} held at {value:g} at every step: "
                  f"**{result.clamped_probability:.3f}** ({result.clamped_probability - result.probability:+.3f}).")
               + f" Unit {unit}'s own h over this review, free: {float(result.unit_values.min()):+.2f} to "
               f"{float(result.unit_values.max()):+.2f}.")
    lines = {"free": result.trajectory} if value is None else {"free": result.trajectory, held: result.clamped_trajectory}
    p = result.clamped_probability
    return {"positive": p, "negative": 1 - p}, summary, trajectories_figure(lines, result.tokens)


@endpoint(prompt=PROMPT, checkpoint=CHECKPOINT, layer=LAYER, unit=UNIT, value=SIZE, tokens=TOKENS, seed=SEED)
def clamp_generate(lab: Lab, prompt: str, checkpoint: str = "default.pt", layer: str = "", unit: float = 0,
                   value: float = 1.0, tokens: float = 30, seed: float = 0):
    """Generate text after a prompt with the language model kept beside the checkpoint (the model as pre-training
    left it) three ways, one seed: free, with one unit's h held at +|value| and at -|value|; the checkpoint's
    classifier then scores each text.

    Args:
        prompt: the start of a review, e.g. "This blender is".
        checkpoint: a checkpoint file name whose language model was kept, e.g. "default.pt".
        layer: a checkpoint_layers value such as "0"; empty: the top layer.
        unit: the unit to hold, from 0.
        value: the size to hold it at, 0 to 10: +value and -value.
        tokens: how many tokens to generate, 1 to 60.
        seed: the random seed of the sampling, 0 to 2**31 - 1.

    Returns:
        a table: the clamp, the generated text, the classifier's P(positive) of the prompt and the text
    """
    predictor = lab.checkpoints.predictor(checkpoint)
    layer, direction = chosen_layer(predictor, layer)
    language_model = lab.checkpoints.predictor(language_model_file(checkpoint))
    made = generate(language_model, layer, direction, prompt, chosen_unit(predictor, unit), value, tokens, seed)
    rows = []
    for name, words in (("free", made.free), (f"unit {unit} held at +{made.value:g}", made.high),
                        (f"unit {unit} held at -{made.value:g}", made.low)):
        written = " ".join(words)
        rows.append([name, written, round(predictor.predict(" ".join(made.prompt) + " " + written)[0], 3)])
    return rows


@endpoint(**WHERE)
def best_unit(lab: Lab, checkpoint: str, layer: str, corpus: dict | None) -> tuple[int, int]:
    """The unit that predicts best alone in a built atlas, for the unit page and the steering."""
    best = int(atlas_for(lab, checkpoint, layer, corpus)[1].best(1)[0])
    return best, best


@endpoint(checkpoint=CHECKPOINT)
def refresh_layers(lab: Lab, checkpoint: str) -> gr.Dropdown:
    predictor = lab.checkpoints.predictor(checkpoint)
    return gr.Dropdown(choices=layer_choices(predictor), value=default_layer(predictor))


RAW = MappingProxyType(dict(preprocess=False))
PRIVATE = MappingProxyType(dict(preprocess=False, api_visibility="private"))


def _ablation_section(lab: Lab, where: list) -> None:
    with gr.Accordion("The sentiment unit, checked by ablation", open=True, elem_id="ablation"):
        gr.Markdown("Hold the best k units (by accuracy alone) at their mean over the corpus at every step, and compare "
                    "with k random units held the same way (three draws). Reads the corpus once per row below.")
        check = gr.Button("Check by ablation")
        ablation_status = gr.Markdown(label="Ablation status", elem_id="ablation-status")
        verdict = gr.Markdown(label="Ablation verdict", elem_id="ablation-verdict")
        with gr.Row():
            ablation_plot = gr.Plot(label="Accuracy with units held")
            ablation_table = gr.Dataframe(headers=["units held", "k", "accuracy", "lowest", "highest", "units"],
                                          label="Ablation", interactive=False)
    checked = check.click(serve(lab, unit_ablation), where, [verdict, ablation_plot, ablation_table],
                          api_name="unit_ablation",
                          concurrency_limit=1, **RAW)
    status_line(lab, checked, status=ablation_status)


def _unit_page_section(lab: Lab, where: list) -> tuple[gr.Number, list, list, gr.Markdown]:
    """The unit page; returns its unit field, its inputs and outputs and its status line, for the atlas to open it."""
    with gr.Accordion("Unit page", open=True, elem_id="unit-page"):
        with gr.Row():
            unit = gr.Number(0, label="Unit (from 0)", precision=0)
            state_name = gr.Radio(list(STATES), value="hidden_state", label="Colour tokens by")
            show = gr.Button("Show the unit")
        page_status = gr.Markdown(label="Unit page status", elem_id="unit-page-status")
        page_summary = gr.Markdown(label="Unit summary", elem_id="unit-summary")
        histogram = gr.Plot(label="Final h by class")
        up = gr.HighlightedText(label="Where it reaches its highest values", combine_adjacent=False, elem_id="unit-up")
        down = gr.HighlightedText(label="Where it reaches its lowest values", combine_adjacent=False, elem_id="unit-down")
    inputs, outputs = [*where, unit, state_name], [page_summary, histogram, up, down]
    shown = show.click(serve(lab, unit_page), inputs, outputs, api_name="unit_page", concurrency_limit=1, **RAW)
    status_line(lab, shown, status=page_status)
    return unit, inputs, outputs, page_status


def _match_section(lab: Lab, where: list) -> None:
    with gr.Accordion("Select to match (LSTMVis)", open=True, elem_id="match"):
        with gr.Row():
            review = gr.Textbox("The screen is not good and the battery dies within an hour.", lines=2, scale=3,
                                max_length=CONTEXT.most, label="Review (select a phrase in it)")
            with gr.Column(scale=2):
                phrase = gr.Textbox("not good", label="Phrase", max_lines=1, max_length=PHRASE.most)
                threshold = gr.Slider(-1, 1, value=0.3, step=0.05, label="A unit is on above")
                find = gr.Button("Find matching passages")
        match_status = gr.Markdown(label="Match status", elem_id="match-status")
        match_summary = gr.Markdown(label="Matched units", elem_id="match-summary")
        passages = gr.Dataframe(headers=["units on", "review", "P(positive)", "passage"], label="Matching passages",
                                interactive=False, wrap=True, elem_id="passages")
    found = find.click(serve(lab, match_units), [*where, review, phrase, threshold], [match_summary, passages],
                       api_name="match_units", concurrency_limit=1, **RAW)
    selected = review.select(select_phrase, None, phrase, api_visibility="private")
    status_line(lab, found, selected, status=match_status)


def _steer_section(lab: Lab, checkpoint: gr.Dropdown, layer: gr.Dropdown) -> gr.Number:
    """The steering section; returns its unit field."""
    with gr.Accordion("Steer a unit", open=True, elem_id="steer"):
        with gr.Row():
            review = gr.Textbox("It didn't disappoint.", lines=2, scale=3, max_length=REVIEW.most,
                                label="Review to steer")
            with gr.Column(scale=2):
                unit = gr.Number(0, label="Unit to hold (from 0)", precision=0)
                value = gr.Number(1.0, label=f"Hold its h at (-{STEER_RANGE:g} to {STEER_RANGE:g}; empty: free)")
                clamp = gr.Button("Predict with the unit held")
        steer_status = gr.Markdown(label="Steer status", elem_id="steer-status")
        with gr.Row():
            steered = gr.Label(label="Sentiment with the unit held", num_top_classes=2, scale=1)
            summary = gr.Markdown(label="Steering summary", scale=3, elem_id="steer-summary")
        plot = gr.Plot(label="Prediction after each token, free and held")
        gr.Markdown("**Generate** with the checkpoint's language model (the model as pre-training left it, before its "
                    "layers were tuned for the verdict): free, then with the unit held at +value and at -value, one "
                    "seed for all three; the classifier scores each text. The units began as the language model's, so "
                    "a sentiment unit of the classifier often, not always, steers what it writes.")
        with gr.Row():
            prompt = gr.Textbox("This blender is", label="Prompt", max_lines=1, max_length=PROMPT.most, scale=3)
            tokens = gr.Slider(1, MAX_GENERATED, value=30, step=1, label="Tokens to generate", scale=2)
            seed = gr.Number(0, label="Seed", precision=0, scale=1)
            write = gr.Button("Generate", scale=1)
        generate_status = gr.Markdown(label="Generate status", elem_id="generate-status")
        texts = gr.Dataframe(headers=["clamp", "text", "P(positive)"], label="Generated text", interactive=False,
                             wrap=True, elem_id="generated")
    clamped = clamp.click(serve(lab, clamp_predict), [review, checkpoint, layer, unit, value], [steered, summary, plot],
                          api_name="clamp_predict", **RAW)
    written = write.click(serve(lab, clamp_generate), [prompt, checkpoint, layer, unit, value, tokens, seed], texts,
                          api_name="clamp_generate", **RAW)
    status_line(lab, clamped, status=steer_status)
    status_line(lab, written, status=generate_status)
    return unit


def create_tab(lab: Lab) -> None:
    """Lays out the Units tab and wires its events: the atlas here, each section beside its own layout."""
    gr.Markdown(INTRO)
    checkpoints = list_checkpoints()
    first = lab.checkpoints.predictor(CHECKPOINT.check(checkpoints[0])) if checkpoints else None
    with gr.Row():
        checkpoint = gr.Dropdown(checkpoints, value=checkpoints[0] if checkpoints else None, allow_custom_value=True,
                                 label="Checkpoint", scale=2)
        layer = gr.Dropdown(layer_choices(first) if first else [], value=default_layer(first) if first else None,
                            label="Layer", scale=1)
        # No file_types: Gradio would refuse other files before the corpus's contract does, with a traceback in the log.
        corpus = gr.File(label=("Corpus (optional): a review file of at most 20,000 reviews; empty: the checkpoint's "
                                "own test split") if lab.settings.allow_uploads else
                         "Corpus: the checkpoint's own test split (uploads are off on this server)",
                         interactive=lab.settings.allow_uploads, height=120, scale=2, elem_id="units-corpus")
    build = gr.Button("Build the atlas", variant="primary")
    atlas_status = gr.Markdown(label="Atlas status", elem_id="atlas-status")
    summary = gr.Markdown(label="Atlas summary", elem_id="atlas-summary")
    with gr.Row():
        scatter = gr.Plot(label="Every unit", scale=2)
        table = gr.Dataframe(label="Unit atlas (click a row to open the unit)", interactive=False, scale=3,
                             max_height=420, elem_id="atlas-table")
    where = [checkpoint, layer, corpus]
    _ablation_section(lab, where)
    unit, page_inputs, page_outputs, page_status = _unit_page_section(lab, where)
    _match_section(lab, where)
    steer_unit = _steer_section(lab, checkpoint, layer)

    built = build.click(serve(lab, unit_atlas), where, [summary, scatter, table], api_name="unit_atlas",
                        concurrency_limit=1, **RAW)
    # A new atlas opens on the unit that predicts best alone; a clicked row opens its unit. Steering follows.
    opened_best = built.success(serve(lab, best_unit), where, [unit, steer_unit], **PRIVATE).success(
        serve(lab, unit_page), page_inputs, page_outputs, concurrency_limit=1, **PRIVATE)
    picked = table.select(select_unit, None, unit, api_visibility="private")
    opened = picked.success(serve(lab, unit_page), page_inputs, page_outputs, concurrency_limit=1, **PRIVATE)
    picked.success(lambda u: u, unit, steer_unit, api_visibility="private")
    relisted = checkpoint.change(serve(lab, refresh_layers), checkpoint, layer, **PRIVATE)
    checkpoint.focus(serve(lab, available_checkpoints), checkpoint, checkpoint, **PRIVATE)  # runs finished since the page opened
    status_line(lab, built, relisted, status=atlas_status)
    status_line(lab, picked, opened, opened_best, status=page_status)
