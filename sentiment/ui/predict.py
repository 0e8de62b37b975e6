"""The Predict tab: the verdict, what each token did, the gates of every step, one step of the cell, and what the
model reads."""
from __future__ import annotations

import html

import gradio as gr
import numpy as np

from ..contract import CHECKPOINT, LAYER, REVIEW, TOKEN, UNIT, Number
from ..explain.gates import ATTRIBUTION, ATTRIBUTION_METHODS
from ..explain.review import (
    UNITS_SHOWN,
    Explanation,
    default_layer,
    layer_choices,
    reading,
    unit_step,
)
from ..model.checkpoint import list_checkpoints
from ..model.predictor import Predictor
from ..plots.cell import cell_figure, layer_gate_bars
from ..plots.figure import short_token
from ..plots.gates import attribution_highlights
from .boundary import endpoint, serve, status_line
from .lab import Lab

EXAMPLES = (
    "Best purchase this year: The blender is quiet, powerful and easy to clean. I use it every morning and love it.",
    "Complete waste of money: It stopped working after two days and customer service never answered my emails.",
    "Not bad at all, and cheap, but it does the job.",
    "Not good, not worth it: I was not impressed. The sound is not bad, but it is not what I expected and I would not "
    "buy it again.",
    "Long but fair: " + " ".join([
        "I bought this coffee grinder after reading many reviews and comparing it with three other models.",
        "The first week it worked fine, although the container is smaller than the pictures suggest.",
        "In the second week the lid began to crack near the hinge and the motor started to smell when grinding for "
        "more than a minute.",
        "I contacted the seller, who offered a replacement, and the new one has the same weak lid.",
        "The grind is uniform and the price is low, yet I cannot recommend a grinder that breaks so quickly.",
        "Overall I am disappointed and I am returning it.",
    ]),
)


# A negation the model reads right: the tab opens on it, explained, with its strongest token stepped into.
OPENING = EXAMPLES[2]
# The inputs of the tab's endpoints beside those every tab shares.


@endpoint(review=REVIEW, checkpoint=CHECKPOINT, layer=LAYER, units=UNITS_SHOWN, attribution=ATTRIBUTION)
def predict(lab: Lab, review: str, checkpoint: str = "default.pt", layer: str = "", units: float = 12,
            attribution: str = "when read"):
    """Predict whether a customer review is positive or negative, and explain the prediction.

    Args:
        review: the review text; the model reads its first 200 tokens (words and punctuation).
        checkpoint: a checkpoint file name, e.g. "default.pt" (available_checkpoints lists them).
        layer: the recurrent layer to show, a checkpoint_layers value such as "0" (first layer); empty: the top one.
        units: how many hidden units the gate and state plots show, 1 to 64, the most important first.
        attribution: "when read" (the token's effect on the running verdict) or "on the final prediction".

    Returns:
        the probabilities of "positive" and "negative"
        a Markdown summary: the verdict, the tokens read, the unknown words, how the model reads a review
        each token with its effect on the logit scaled to -1..1 (above 0: it pushed towards positive)
        five plotly figures: the prediction after each token, each token's effect, the gates, the cell and hidden states, the mean gates
    """
    predictor, explanation = lab.checkpoints.explained(checkpoint, review, layer, units, attribution)
    figures = explanation.figures()
    p = explanation.probability
    return ({"positive": p, "negative": 1 - p}, predict_summary(predictor, explanation),
            attribution_highlights(explanation.inspection.attributions), *figures.values())


def predict_summary(predictor: Predictor, explanation: Explanation) -> str:
    trace, attributions = explanation.inspection.trace, explanation.inspection.attributions
    p, layer = trace.probability, explanation.layer
    unknown = sorted(set(explanation.unknown))
    top = layer.layer == predictor.model.config.num_layers - 1
    note = predictor.checkpoint.preprocessing_note
    return (
        f"**{'Positive' if p >= 0.5 else 'Negative'}** with P(positive) = {p:.3f} · {len(trace.tokens)} tokens read"
        + (f" (only the first {predictor.max_len})" if explanation.truncated else "")
        + (f" · {len(explanation.unknown)} unknown to this model (read as _UNK): "
           + ", ".join(f"`{short_token(t)}`" for t in unknown[:12]) if unknown else "")
        + f"\n\n**How it reads the review:** the head reads {explanation.readout}."
        + f"\n\n**Token effects, {attributions.method}:** {attributions.description} (towards +1: pushed the review "
        "positive; towards -1: negative)."
        + f"\n\nThe gate trace reproduces `nn.{type(predictor.model.rnn).__name__}` to {trace.max_error:.1e}. "
        f"Units shown: the {len(explanation.units)} "
        + ("with the largest share of the final logit." if top else "whose hidden state varies most.")
        + (f"\n\n**Note:** {note}" if note else "")
    )


@endpoint(checkpoint=CHECKPOINT)
def checkpoint_layers(lab: Lab, checkpoint: str):
    """The layers (and directions) of a checkpoint's model, as (label, value) choices for predict's layer.

    Args:
        checkpoint: a checkpoint file name, e.g. "default.pt".
    """
    predictor = lab.checkpoints.predictor(checkpoint)
    return gr.Dropdown(choices=layer_choices(predictor), value=default_layer(predictor))


@endpoint(review=REVIEW, checkpoint=CHECKPOINT, layer=LAYER, token=TOKEN, unit=UNIT)
def cell_step(lab: Lab, review: str, checkpoint: str = "default.pt", layer: str = "", token: float = 0,
              unit: float = 0):
    """One step of the recurrent cell with the trained model's own numbers.

    Args:
        review: the review text.
        checkpoint: a checkpoint file name, e.g. "default.pt".
        layer: a checkpoint_layers value ("0" is the first layer); empty means the top layer.
        token: which token, counted from 0.
        unit: which hidden unit, counted from 0.

    Returns:
        a JSON object: an LSTM's gates f, i, g, o, its c_prev, c (= f*c_prev + i*g), h_prev and h (= o*tanh(c)); a GRU's r, z, n, h_prev, h; an RNN's h_prev, h; the token; the whole layer's vectors at that token (layer_vectors)
        the cell drawn with those values, as a plotly figure
        the layer's gates at that token as bars, as a plotly figure
    """
    predictor, explanation = lab.checkpoints.explained(checkpoint, review, layer)
    trace = explanation.inspection.trace
    step = unit_step(explanation.layer, trace.tokens, token, unit, predictor.model.config.cell)
    return step.to_dict(), cell_figure(step), layer_gate_bars(step)


@endpoint(review=REVIEW, checkpoint=CHECKPOINT, layer=LAYER, token=TOKEN)
def cell_controls(lab: Lab, review: str, checkpoint: str, layer: str, token: float):
    """After a prediction: the token slider's range (the last token unless one is chosen), and the most important
    unit of the layer shown."""
    _, explanation = lab.checkpoints.explained(checkpoint, review, layer)
    last = len(explanation.inspection.trace.tokens) - 1
    chosen = min(token, last)
    return (gr.Slider(minimum=0, maximum=max(last, 1), value=chosen, step=1, interactive=last > 0),
            int(explanation.units[0]))


def select_token(event: gr.SelectData) -> int:
    return event.index if isinstance(event.index, int) else event.index[0]


@endpoint(review=REVIEW, checkpoint=CHECKPOINT, layer=LAYER, token=TOKEN, by=Number("step", -1, 1, integer=True))
def step_token(lab: Lab, review: str, checkpoint: str, layer: str, token: float, by: float):
    """The stepper: the token `by` steps on, stopping at the review's first and last token, and its two buttons, each
    off at its own end."""
    _, explanation = lab.checkpoints.explained(checkpoint, review, layer)
    last = len(explanation.inspection.trace.tokens) - 1
    chosen = min(max(int(token) + int(by), 0), last)
    return chosen, gr.Button(interactive=chosen > 0), gr.Button(interactive=chosen < last)


@endpoint(review=REVIEW)
def accept_review(review: str) -> None:
    """A review being typed is explained once it holds text; an emptied box says so once, beside the review."""


@endpoint(review=REVIEW, checkpoint=CHECKPOINT)
def read_review(lab: Lab, review: str, checkpoint: str = "default.pt"):
    """What the model reads of a review: its path through preprocessing.

    Args:
        review: the review text.
        checkpoint: a checkpoint file name, e.g. "default.pt" (its vocabulary and maximum length apply).

    Returns:
        a Markdown summary: the cleaned text, the number of tokens, the vocabulary's size, the unknown words, the cut
        a table of the tokens the model reads: position from 0, token, vocabulary id (1 is _UNK, an unknown word)
    """
    predictor = lab.checkpoints.predictor(checkpoint)
    read = reading(predictor, review)
    cleaned = read.cleaned if len(read.cleaned) <= 600 else read.cleaned[:600] + " …"
    summary = (
        f"**1. Cleaned** (lower-case, digits → 0, ’ → ', `dont` → `don't`, web addresses → `<url>`): {html.escape(cleaned)}\n\n"
        f"**2. Tokens** (NLTK's word rules): {len(read.tokens):,}{'+' if len(read.tokens) >= 1000 else ''}.\n\n"
        f"**3. Ids** from a vocabulary of {read.vocabulary:,} tokens (0 is `_PAD`, 1 is `_UNK`): "
        f"{len(read.unknown)} distinct unknown word(s) read as `_UNK`"
        + (": " + ", ".join(f"`{short_token(t)}`" for t in read.unknown[:12]) if read.unknown else "") + ".\n\n"
        f"**4. The row the model sees:** the first {read.kept} of at most {predictor.max_len} tokens"
        + (f" ({len(read.tokens) - read.kept:,}+ cut)" if len(read.tokens) > read.kept else "")
        + "; in a batch, shorter reviews are padded on the right with `_PAD` (0), which the model never reads."
    )
    rows = [[t, short_token(token), i] for t, (token, i) in enumerate(zip(read.tokens[: read.kept], read.ids))]
    return summary, rows


def _opening(lab: Lab, checkpoint: str) -> dict:
    """What the tab shows before anyone types: the opening review explained, its strongest token stepped into."""
    shown = predict(lab, OPENING, checkpoint)
    explanation = lab.checkpoints.explained(CHECKPOINT.check(checkpoint), OPENING)[1]
    token = int(np.argmax(np.abs(explanation.inspection.attributions.values)))
    unit = int(explanation.units[0])  # as cell_controls picks it (which returns a component: not made here)
    return dict(predicted=shown, token=token, last=len(explanation.inspection.trace.tokens) - 1, unit=unit,
                step=cell_step(lab, OPENING, checkpoint, "", token, unit), read=read_review(lab, OPENING, checkpoint))


def _cell_step_panel(opened: dict) -> tuple:
    """The cell step's controls and views: previous, token, next, unit, the cell, the layer's bars, the JSON."""
    chosen, last = opened.get("token", 0), opened.get("last", 1)
    values, cell, bars = opened.get("step", (None, None, None))
    with gr.Accordion("Step inside the cell: one token, one unit, the real numbers", open=True, elem_id="cell-step"):
        with gr.Row():
            previous = gr.Button("◀ previous token", scale=0, interactive=chosen > 0, elem_id="previous-token")
            token = gr.Slider(0, last, value=chosen, step=1, label="Token (from 0)")
            following = gr.Button("next token ▶", scale=0, interactive=chosen < last, elem_id="next-token")
            unit = gr.Number(opened.get("unit", 0), label="Unit (from 0)", scale=0)
        with gr.Row():
            cell_plot = gr.Plot(cell, label="The cell at this token", scale=3)
            bars = gr.Plot(bars, label="The whole layer", scale=2)
        with gr.Accordion("The same values as JSON (the cell_step API)", open=False):
            values = gr.JSON(values, label="Cell values")
    return previous, token, following, unit, cell_plot, bars, values


def _review_row(lab: Lab, checkpoints: list[str]) -> tuple:
    """The review with its examples, and what to read it with: checkpoint, layer, units, token effect, the button."""
    first = lab.checkpoints.predictor(CHECKPOINT.check(checkpoints[0])) if checkpoints else None
    with gr.Row():
        with gr.Column(scale=3):
            review = gr.Textbox(OPENING, label="Review", lines=5, max_length=REVIEW.most,
                                placeholder="Type or paste a customer review …")
            examples = gr.Dataset(components=[review], samples=[[e] for e in EXAMPLES], type="values",
                                  label="Examples: positive, negative, negation and contrast, long (click to predict)")
        with gr.Column(scale=2):
            # Custom values allowed: runs finished after this page loaded must be choosable too.
            checkpoint = gr.Dropdown(checkpoints, value=checkpoints[0] if checkpoints else None,
                                     allow_custom_value=True, label="Checkpoint (the shipped default first)")
            layer = gr.Dropdown(layer_choices(first) if first else [], value=default_layer(first) if first else None,
                                label="Layer to inspect")
            units = gr.Slider(1, 64, value=12, step=1, label="Units to show")
            attribution = gr.Radio(list(ATTRIBUTION_METHODS), value="when read",
                                   label="Token effect (occlusion with _UNK)",
                                   info="when read: instant; on the final prediction: re-scores the review once per "
                                   "token")
            predict_button = gr.Button("Predict and explain", variant="primary")
            predict_status = gr.Markdown(label="Predict status", elem_id="predict-status")
    return review, examples, checkpoint, layer, units, attribution, predict_button, predict_status


def create_tab(lab: Lab) -> gr.Dropdown:
    """Lays out the Predict tab, open on a worked example, and wires its events; returns the checkpoint list the Train
    tab refreshes."""
    checkpoints = list_checkpoints()
    opened = _opening(lab, checkpoints[0]) if checkpoints else {}
    shown = opened.get("predicted", (None,) * 8)
    review, examples, checkpoint, layer, units, attribution, predict_button, predict_status = _review_row(
        lab, checkpoints)
    with gr.Row():
        label = gr.Label(shown[0], label="Sentiment", num_top_classes=2, scale=1)
        summary = gr.Markdown(shown[1], label="Summary", scale=3, elem_id="summary")
    tokens = gr.HighlightedText(shown[2], label="What each token did (click a token to step inside the cell with it)",
                                combine_adjacent=False, show_legend=True, elem_id="token-effects")
    with gr.Row():
        trajectory = gr.Plot(shown[3], label="Prediction after each token")
        effects = gr.Plot(shown[4], label="Token effects")
    gates, states = gr.Plot(shown[5], label="Gates"), gr.Plot(shown[6], label="Cell and hidden state")
    mean_gates = gr.Plot(shown[7], label="Mean gates")
    previous, token, following, unit, cell_plot, bars, values = _cell_step_panel(opened)
    read = opened.get("read", (None, None))
    with gr.Accordion("What the model reads: cleaned text → tokens → ids → the row", open=False, elem_id="reading"):
        reading_summary = gr.Markdown(read[0], label="Reading steps")
        reading_table = gr.Dataframe(read[1], headers=["position", "token", "id"], label="The row the model sees",
                                     show_label=False, interactive=False, elem_id="reading-table")

    inputs = [review, checkpoint, layer, units, attribution]
    outputs = [label, summary, tokens, trajectory, effects, gates, states, mean_gates]
    step_inputs, step_outputs = [review, checkpoint, layer, token, unit], [values, cell_plot, bars]
    stepper_inputs, stepper_outputs = [review, checkpoint, layer, token], [token, previous, following]
    raw, private = dict(preprocess=False), dict(preprocess=False, api_visibility="private")
    predict_, cell_step_, cell_controls_ = serve(lab, predict), serve(lab, cell_step), serve(lab, cell_controls)
    step_token_ = serve(lab, step_token)
    # The public events first: a later event of the same function would take its API name.
    stepped = gr.on([token.release, unit.submit], cell_step_, step_inputs, step_outputs, api_name="cell_step", **raw)
    clicked = predict_button.click(predict_, inputs, outputs, api_name="predict", **raw)
    changed = gr.on([review.submit, attribution.change, layer.change, units.release], predict_, inputs, outputs,
                    **private)
    # The verdict follows the review as it is typed, pasted or chosen among the examples: the newest text only, once
    # the box holds some.
    typed = review.change(serve(lab, accept_review), review, None, trigger_mode="always_last", **private).success(
        predict_, inputs, outputs, trigger_mode="always_last", **private)
    examples.click(lambda sample: sample[0], examples, review, api_visibility="private")
    for event in (clicked, changed, typed):
        event.success(cell_controls_, [review, checkpoint, layer, token], [token, unit], **private).success(
            step_token_, [*stepper_inputs, gr.State(0)], stepper_outputs, **private).success(
            cell_step_, step_inputs, step_outputs, **private)
        event.success(serve(lab, read_review), [review, checkpoint], [reading_summary, reading_table],
                      **(dict(api_name="read_review", **raw) if event is clicked else private))
    layers_listed = checkpoint.change(serve(lab, checkpoint_layers), checkpoint, layer, api_name="checkpoint_layers",
                                      **raw)
    selected = tokens.select(select_token, None, token, api_visibility="private").then(
        step_token_, [*stepper_inputs, gr.State(0)], stepper_outputs, **private).success(
        cell_step_, step_inputs, step_outputs, **private)
    # The stepper stops at the review's ends: each button is off at its own end.
    shifted = [button.click(step_token_, [*stepper_inputs, gr.State(by)], stepper_outputs, **private).success(
        cell_step_, step_inputs, step_outputs, **private) for button, by in ((previous, -1), (following, 1))]
    released = token.release(step_token_, [*stepper_inputs, gr.State(0)], stepper_outputs, **private)
    status_line(lab, clicked, changed, typed, stepped, layers_listed, selected, *shifted, released,
                status=predict_status)
    return checkpoint
