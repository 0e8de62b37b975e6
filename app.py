"""LSTM Sentiment Lab: train, take apart and question an LSTM sentiment classifier in the browser.

A thin Gradio layer over the `sentiment` package. Each tab is one function that lays out its components and wires
its events next to them. Every handler goes through `endpoint`, which turns a refusal into a sentence for the person
or API client, and takes raw values (`preprocess=False`) so that it checks them itself. `python app.py --help`.
"""
from __future__ import annotations

import argparse
import functools
import html
import inspect
import logging
import math
import os
import re
import secrets
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import gradio as gr

from sentiment import plots
from sentiment.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT, list_checkpoints, resolve_checkpoint
from sentiment.data import MORE_REVIEW_COUNT, DataError, check_review_file
from sentiment.errors import USER_ERRORS
from sentiment.explain import Explanation, default_layer, explain, layer_choices, reading, unit_step
from sentiment.gates import ATTRIBUTION_METHODS
from sentiment.memory import (
    MEMORY_CHECKPOINTS, MEMORY_EXAMPLE, MemorySettings, accuracy_by_length, gradient_drop, gradient_norms,
    memory_experiment,
)
from sentiment.config import GROUPS, ConfigError, Setting, check_choice, check_range, grouped
from sentiment.model import CELLS, ModelConfig, describe_device, pick_device
from sentiment.playground import SIZES, describe_cell, unrolled_diagram
from sentiment.predictor import Predictor, PredictorCache
from sentiment.preprocessing import encode_review
from sentiment.presets import PRESETS
from sentiment.runner import RunState, TrainingRunner
from sentiment.scoring import SOURCE_COLUMNS, TestReport, source_rows
from sentiment.settings import Settings
from sentiment.trainer import TrainConfig

log = logging.getLogger("lstm_sentiment_lab")
SETTINGS = Settings()  # main() reads the environment and the command line into it
DEVICE = describe_device(pick_device("auto"))
runner = TrainingRunner()
predictors = PredictorCache()
MAX_REVIEW_CHARS = 2_000_000
UPLOAD_TYPES = [".txt", ".bz2", ".gz", ".csv", ".tsv"]
EXAMPLES = [
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
]


# ---------------------------------------------------------------- the boundary

def endpoint(handler):
    """Every event handler goes through here. A refusal (a bad value, a file or checkpoint we cannot use) reaches the
    person or API client as its sentence and the log as one line; anything unexpected is logged with its traceback
    and answered with a sentence too."""

    def refusal(error: Exception) -> gr.Error:
        if isinstance(error, USER_ERRORS):
            message = str(error)
            log.info("refused %s: %s", handler.__name__, message)
        else:
            log.exception("%s failed", handler.__name__)
            message = (f"Something went wrong on the server while answering {handler.__name__} "
                       f"({type(error).__name__}); it is in the server's log. Try another input.")
        return gr.Error(html.escape(message, quote=False), print_exception=False)  # the modal renders HTML

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:
                raise refusal(error) from None
        return streaming

    @functools.wraps(handler)
    def answering(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            raise refusal(error) from None
    return answering


def review_text(review: object) -> str:
    """A review as the model may read it; an empty, non-text or oversized one is refused."""
    if not isinstance(review, str):
        raise ConfigError(f"The review must be text; got {type(review).__name__}.")
    if not review.strip():
        raise ConfigError("The review is empty: type or paste a customer review first.")
    if len(review) > MAX_REVIEW_CHARS:
        raise ConfigError(f"The review is {len(review):,} characters; the limit is {MAX_REVIEW_CHARS:,}.")
    # A lone surrogate (JSON allows one) cannot be encoded in any reply: it becomes U+FFFD.
    return review.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def whole_number(value: object, name: str, low: int, high: int) -> int:
    """A whole number from a field or an API call (a numeric string too); anything else is refused."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    check_range(name, value, low, high)
    return int(value)


def cached_predictor(checkpoint: object) -> Predictor:
    return predictors.get(resolve_checkpoint(checkpoint))


def explained(checkpoint: object, review: object, layer: object = "", units: object = 12,
              attribution: object = "when read") -> tuple[Predictor, Explanation]:
    """The checkpoint and its explanation of the review. A prediction, its cell step and its reading ask for the same
    one in a row: the last few are kept (keyed by the checkpoint file's state, so a retrained file is read again)."""
    path = resolve_checkpoint(checkpoint)
    text = review_text(review)
    shown = whole_number(units, "units", 1, 64)
    layer = str(layer) if layer not in (None, "") else None
    check_choice("attribution", attribution, ATTRIBUTION_METHODS)
    return _explained(str(path), path.stat().st_mtime_ns, text, layer, shown, attribution)


@functools.lru_cache(maxsize=8)
def _explained(path: str, _mtime_ns: int, text: str, layer: str | None, units: int, attribution: str):
    predictor = predictors.get(Path(path))
    return predictor, explain(predictor, text, layer, units, attribution)


# ---------------------------------------------------------------- Predict tab

@endpoint
def predict(review: str, checkpoint: str = "default.pt", layer: str = "", units: float = 12,
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
    predictor, explanation = explained(checkpoint, review, layer, units, attribution)
    figures = explanation.figures()
    p = explanation.probability
    return ({"positive": p, "negative": 1 - p}, predict_summary(predictor, explanation),
            plots.attribution_highlights(explanation.inspection.attributions), *figures.values())


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
           + ", ".join(f"`{plots.short_token(t)}`" for t in unknown[:12]) if unknown else "")
        + f"\n\n**How it reads the review:** the head reads {explanation.readout}."
        + f"\n\n**Token effects, {attributions.method}:** {attributions.description} (towards +1: pushed the review "
        "positive; towards -1: negative)."
        + f"\n\nThe gate trace reproduces `nn.{type(predictor.model.rnn).__name__}` to {trace.max_error:.1e}. "
        f"Units shown: the {len(explanation.units)} "
        + ("with the largest share of the final logit." if top else "whose hidden state varies most.")
        + (f"\n\n**Note:** {note}" if note else "")
    )


@endpoint
def checkpoint_layers(checkpoint: str):
    """The layers (and directions) of a checkpoint's model, as (label, value) choices for predict's layer.

    Args:
        checkpoint: a checkpoint file name, e.g. "default.pt".
    """
    predictor = cached_predictor(checkpoint)
    return gr.Dropdown(choices=layer_choices(predictor), value=default_layer(predictor))


@endpoint
def cell_step(review: str, checkpoint: str = "default.pt", layer: str = "", token: float = 0, unit: float = 0):
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
    predictor, explanation = explained(checkpoint, review, layer)
    trace = explanation.inspection.trace
    step = unit_step(explanation.layer, trace.tokens, token, unit, predictor.model.config.cell)
    return step.to_dict(), plots.cell_figure(step), plots.layer_gate_bars(step)


@endpoint
def cell_controls(review: str, checkpoint: str, layer: str, token: float):
    """After a prediction: the token slider's range (the last token unless one is chosen), and the most important
    unit of the layer shown."""
    _, explanation = explained(checkpoint, review, layer)
    last = len(explanation.inspection.trace.tokens) - 1
    chosen = min(int(token), last) if isinstance(token, (int, float)) and math.isfinite(token) and token >= 0 else last
    return (gr.Slider(minimum=0, maximum=max(last, 1), value=chosen, step=1, interactive=last > 0),
            int(explanation.units[0]))


def select_token(event: gr.SelectData) -> int:
    return event.index if isinstance(event.index, int) else event.index[0]


def shift_token(token: float, by: int) -> int:
    return max(0, int(token) + by) if isinstance(token, (int, float)) and math.isfinite(token) else 0


@endpoint
def read_review(review: str, checkpoint: str = "default.pt"):
    """What the model reads of a review: its path through preprocessing.

    Args:
        review: the review text.
        checkpoint: a checkpoint file name, e.g. "default.pt" (its vocabulary and maximum length apply).

    Returns:
        a Markdown summary: the cleaned text, the number of tokens, the vocabulary's size, the unknown words, the cut
        a table of the tokens the model reads: position from 0, token, vocabulary id (1 is _UNK, an unknown word)
    """
    predictor = cached_predictor(checkpoint)
    read = reading(predictor, review_text(review))
    cleaned = read.cleaned if len(read.cleaned) <= 600 else read.cleaned[:600] + " …"
    summary = (
        f"**1. Cleaned** (lower-case, digits → 0, ’ → ', `dont` → `don't`, web addresses → `<url>`): {html.escape(cleaned)}\n\n"
        f"**2. Tokens** (NLTK's word rules): {len(read.tokens):,}{'+' if len(read.tokens) >= 1000 else ''}.\n\n"
        f"**3. Ids** from a vocabulary of {read.vocabulary:,} tokens (0 is `_PAD`, 1 is `_UNK`): "
        f"{len(read.unknown)} distinct unknown word(s) read as `_UNK`"
        + (": " + ", ".join(f"`{plots.short_token(t)}`" for t in read.unknown[:12]) if read.unknown else "") + ".\n\n"
        f"**4. The row the model sees:** the first {read.kept} of at most {predictor.max_len} tokens"
        + (f" ({len(read.tokens) - read.kept:,}+ cut)" if len(read.tokens) > read.kept else "")
        + "; in a batch, shorter reviews are padded on the right with `_PAD` (0), which the model never reads."
    )
    rows = [[t, plots.short_token(token), i] for t, (token, i) in enumerate(zip(read.tokens[: read.kept], read.ids))]
    return summary, rows


def predict_tab() -> gr.Dropdown:
    """Lays out the Predict tab and wires its events; returns the checkpoint list the Train tab refreshes."""
    checkpoints = list_checkpoints()
    first = cached_predictor(checkpoints[0]) if checkpoints else None
    with gr.Row():
        with gr.Column(scale=3):
            review = gr.Textbox(label="Review", lines=5, max_length=MAX_REVIEW_CHARS,
                                placeholder="Type or paste a customer review …")
            examples = gr.Dataset(components=[review], samples=[[e] for e in EXAMPLES], type="values",
                                  label="Examples: positive, negative, negation and contrast, long (click to predict)")
        with gr.Column(scale=2):
            # Custom values allowed: runs finished after this page loaded must be choosable too.
            checkpoint = gr.Dropdown(checkpoints, value=checkpoints[0] if checkpoints else None, allow_custom_value=True,
                                     label="Checkpoint (the shipped default first)")
            layer = gr.Dropdown(layer_choices(first) if first else [], value=default_layer(first) if first else None,
                                label="Layer to inspect")
            units = gr.Slider(1, 64, value=12, step=1, label="Units to show")
            attribution = gr.Radio(list(ATTRIBUTION_METHODS), value="when read", label="Token effect (occlusion with _UNK)",
                                   info="when read: instant; on the final prediction: re-scores the review once per token")
            predict_button = gr.Button("Predict and explain", variant="primary")
    with gr.Row():
        label = gr.Label(label="Sentiment", num_top_classes=2, scale=1)
        summary = gr.Markdown(scale=3, elem_id="summary")
    tokens = gr.HighlightedText(label="What each token did (click a token to step inside the cell with it)",
                                combine_adjacent=False, show_legend=True, elem_id="token-effects")
    with gr.Row():
        trajectory, effects = gr.Plot(label="Prediction after each token"), gr.Plot(label="Token effects")
    gates, states, mean_gates = gr.Plot(label="Gates"), gr.Plot(label="Cell and hidden state"), gr.Plot(label="Mean gates")
    with gr.Accordion("Step inside the cell: one token, one unit, the real numbers", open=True, elem_id="cell-step"):
        with gr.Row():
            previous, token = gr.Button("◀ previous token", scale=0), gr.Slider(0, 1, value=0, step=1, label="Token (from 0)")
            following, unit = gr.Button("next token ▶", scale=0), gr.Number(0, label="Unit (from 0)", scale=0)
        with gr.Row():
            cell_plot, bars = gr.Plot(label="The cell at this token", scale=3), gr.Plot(label="The whole layer", scale=2)
        with gr.Accordion("The same values as JSON (the cell_step API)", open=False):
            values = gr.JSON(label="cell_step")
    with gr.Accordion("What the model reads: cleaned text → tokens → ids → the row", open=False, elem_id="reading"):
        reading_summary = gr.Markdown()
        reading_table = gr.Dataframe(headers=["position", "token", "id"], interactive=False, elem_id="reading-table")

    inputs = [review, checkpoint, layer, units, attribution]
    outputs = [label, summary, tokens, trajectory, effects, gates, states, mean_gates]
    step_inputs, step_outputs = [review, checkpoint, layer, token, unit], [values, cell_plot, bars]
    raw, private = dict(preprocess=False), dict(preprocess=False, api_visibility="private")
    # The public events first: a later event of the same function would take its API name.
    gr.on([token.release, unit.submit], cell_step, step_inputs, step_outputs, api_name="cell_step", **raw)
    clicked = predict_button.click(predict, inputs, outputs, api_name="predict", **raw)
    changed = gr.on([review.submit, attribution.change, layer.change, units.release], predict, inputs, outputs, **private)
    chosen = examples.click(lambda sample: sample[0], examples, review, api_visibility="private").then(
        predict, inputs, outputs, **private)
    for event in (clicked, changed, chosen):
        event.success(cell_controls, [review, checkpoint, layer, token], [token, unit], **private).success(
            cell_step, step_inputs, step_outputs, **private)
        event.success(read_review, [review, checkpoint], [reading_summary, reading_table],
                      **(dict(api_name="read_review", **raw) if event is clicked else private))
    checkpoint.change(checkpoint_layers, checkpoint, layer, api_name="checkpoint_layers", **raw)
    tokens.select(select_token, None, token, api_visibility="private").then(cell_step, step_inputs, step_outputs,
                                                                            **private)
    for button, by in ((previous, -1), (following, 1)):
        button.click(lambda t, by=by: shift_token(t, by), token, token, api_visibility="private").then(
            cell_step, step_inputs, step_outputs, **private)
    return checkpoint


# ---------------------------------------------------------------- Train tab

# The hyper-parameters the Train tab shows, as their config fields declare them (sentiment/config.py): (dataclass,
# field, setting), group by group, each group's model settings first. This is also the order of the /train endpoint's
# inputs after (source, upload, limit, name, owner).
HYPER_PARAMETERS = grouped(ModelConfig, TrainConfig)
# The basic row, then one row under "Advanced" for each other group.
ROWS = tuple(sum(spec.group == group for *_, spec in HYPER_PARAMETERS) for group in GROUPS)


def _default(cls, name: str):
    return next(f for f in fields(cls) if f.name == name).default


def preset_values(name: str) -> list:
    preset = PRESETS[name]
    return [getattr(preset.model if cls is ModelConfig else preset.train, field) for cls, field, *_ in HYPER_PARAMETERS]


@endpoint
def apply_preset(name: str):
    """Every hyper-parameter of a preset, its row limit, and what the preset is.

    Args:
        name: a preset name: quick, lab, reference, gru or rnn.
    """
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {str(name)[:40]!r}")
    return [*preset_values(name), PRESETS[name].train.limit, f"**{name}**: {PRESETS[name].description}"]


def configs(values: list, limit: object) -> tuple[TrainConfig, ModelConfig]:
    """UI values → the two config dataclasses; anything missing or not a number is a ConfigError."""
    chosen = {ModelConfig: {}, TrainConfig: {}}
    for (cls, name, spec), value in zip(HYPER_PARAMETERS, values):
        label, default = spec.label, _default(cls, name)
        if default is None and value in (None, ""):  # an optional number left empty
            chosen[cls][name] = None
        elif isinstance(default, bool):
            chosen[cls][name] = bool(value)
        elif isinstance(default, str):
            chosen[cls][name] = str(value)
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{label} must be a number; got {str(value)[:40]!r}") from None
            if isinstance(default, int) and not number.is_integer():
                raise ConfigError(f"{label} must be a whole number; got {str(value)[:40]!r}")
            chosen[cls][name] = int(number) if isinstance(default, int) else number
    chosen[TrainConfig]["limit"] = whole_number(limit or 0, "row limit", 0, 1_000_000_000)
    return TrainConfig(**chosen[TrainConfig]), ModelConfig(**chosen[ModelConfig])


def checkpoint_path(name: object) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name or "").strip()).strip("-.")[:60] or "my-model"
    path = CHECKPOINT_DIR / f"{stem}.pt"
    if path.exists() or path.name == DEFAULT_CHECKPOINT.name:  # never overwrite a saved checkpoint
        path = CHECKPOINT_DIR / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}.pt"
    return path


# The Train tab's data choices beside an upload: the value a client sends → the bundled data set it names.
BUNDLED_CHOICES = {"bundled": "sample", "bundled+more": "sample+more"}


def data_path(source: object, upload: object) -> str | Path:
    """What to train on: a bundled data set's name, or a file this app received through an upload (the event's raw
    FileData). Any other path is refused: it would let a client train on files of the server."""
    if source in BUNDLED_CHOICES:
        return BUNDLED_CHOICES[source]
    if source != "upload":
        raise ConfigError(f"data must be one of {', '.join([*BUNDLED_CHOICES, 'upload'])}; got {str(source)[:40]!r}")
    if not SETTINGS.allow_uploads:
        raise DataError("Uploads are turned off on this public demo; train on the bundled sample.")
    raw = upload.get("path") if isinstance(upload, dict) else upload
    if not isinstance(raw, str) or not raw:
        raise DataError("Choose a file to upload first (fastText .txt/.bz2/.gz, or CSV/TSV with a header).")
    path = Path(raw).resolve()
    if Path(gr.utils.get_upload_folder()).resolve() not in path.parents or not path.is_file():
        raise DataError(f"{path.name}: not a file uploaded to this app; upload it with the Train tab's file box.")
    if not any(path.name.lower().endswith(s) for s in UPLOAD_TYPES):
        raise DataError(f"{path.name}: expected one of {', '.join(UPLOAD_TYPES)}")
    if path.stat().st_size > SETTINGS.max_upload_mb * 1024 * 1024:
        raise DataError(f"{path.name}: larger than the {SETTINGS.max_upload_mb} MB upload limit")
    check_review_file(path)
    return path


def train_view(state: RunState) -> tuple:
    """Status line, curves (or their placeholder), report, confusion matrix and checkpoint file for a run state."""
    step = state.step
    if state.active and step:
        what = "Pre-training" if step.phase == "pretrain" else "Training"
        status = (f"**{what}** on {state.data_name} · step {step.step:,}/{step.total_steps:,} · epoch {step.epoch} · "
                  f"loss {step.train_loss:.3f} · {step.reviews_per_s:,.0f} reviews/s · ETA {step.eta_s:,.0f} s")
    else:
        status = f"**{state.status.capitalize()}** · {state.message}" if state.status != "idle" else state.message
    finished, points = state.finished, bool(state.history["step"] or state.history["pretrain_step"])
    report, confusion, checkpoint = "", None, None
    if finished and finished.report:
        r = finished.report
        report = (f"### Test report ({r.n:,} held-out reviews)\n\n| accuracy | F1 | precision | recall | loss |\n"
                  f"|---|---|---|---|---|\n| **{r.accuracy:.2%}** | {r.f1:.2%} | {r.precision:.2%} | {r.recall:.2%} | "
                  f"{r.loss:.4f} |\n\n{source_markdown(finished.by_source)}Saved as `{finished.checkpoint.name}`: it is "
                  "now in the Predict tab's list.")
        confusion = plots.confusion_figure(r.confusion)
        checkpoint = str(finished.checkpoint)
    return (status, gr.Markdown(visible=not points), gr.Plot(plots.training_curves(state.history), visible=points),
            report, gr.Plot(confusion, visible=confusion is not None), gr.File(checkpoint, visible=checkpoint is not None))


def source_markdown(reports: dict[str, TestReport]) -> str:
    """The per-source test reports as a Markdown table ("" for data of one source)."""
    if not reports:
        return ""
    table = [SOURCE_COLUMNS, tuple("---" for _ in SOURCE_COLUMNS), *source_rows(reports)]
    return "\n".join(f"| {' | '.join(cells)} |" for cells in table) + "\n\n"


def watch_training():
    """Stream the current (or last) run until it ends; a page refresh re-attaches here."""
    state = runner.snapshot()
    yield train_view(state)
    while state.active:
        newer = runner.wait_for_change(state.version, timeout=2.0)
        if newer.version != state.version:
            state = newer
            yield train_view(state)
            time.sleep(0.5)  # at most two updates a second: the chart stays smooth and the page light


@endpoint
def start_training(source: str, upload, limit: float, name: str, owner: str, *values):
    """Start a training run with the chosen data and hyper-parameters, then stream its progress.

    Args:
        source: "bundled" (the bundled Amazon sample), "bundled+more" (the sample and the more reviews of
            sentiment/assets/more/) or "upload".
        upload: the uploaded file (as gradio_client's handle_file sends it), when source is "upload".
        limit: reviews to read, from each file in proportion to its size; 0 = every review.
        name: the checkpoint's file name (without .pt); an existing file is never overwritten.
        owner: this browser's id (only the browser that started a run may stop it); may be empty.
        values: the hyper-parameters, in the order of the Train tab.
    """
    if not SETTINGS.allow_training:
        raise ConfigError("Training is turned off on this public demo. Try the Predict and Playground tabs.")
    config, model_config = configs(list(values), limit)
    notes = ""
    if SETTINGS.run_limits:
        config, model_config, notes = SETTINGS.run_limits.apply(config, model_config)
    runner.start(config, model_config, data_path(source, upload), checkpoint_path(name), owner=owner or None,
                 max_seconds=SETTINGS.run_limits.max_seconds if SETTINGS.run_limits else None)
    if notes:
        gr.Info(notes)
    yield from watch_training()


@endpoint
def stop_training(owner: str) -> str:
    """Ask the running training run to stop after its current batch (only the browser that started it may)."""
    return runner.stop(owner or None)


def new_owner_token(token: str) -> str:
    """A random id kept in this browser's storage: it lets the browser that started a run stop it."""
    return token or secrets.token_hex(16)


def available_checkpoints(current: str) -> gr.Dropdown:
    """The checkpoint files the other tools accept, the shipped default first, then the newest.

    Args:
        current: the checkpoint chosen now; it stays chosen while it exists.
    """
    choices = list_checkpoints()
    return gr.Dropdown(choices=choices, value=current if current in choices else (choices[0] if choices else None))


def hyper_parameter_input(cls, name: str, spec: Setting, value):
    if spec.choices:
        return gr.Dropdown(list(spec.choices), value=value, label=spec.label, info=spec.hint)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=spec.label, info=spec.hint)
    # No bounds or rounding here: `configs` checks every value and says what is wrong with it.
    return gr.Number(value=value, label=spec.label, info=spec.hint, min_width=160)


def train_tab(demo: gr.Blocks, checkpoint: gr.Dropdown) -> None:
    """Lays out the Train tab and wires its events."""
    owner = gr.BrowserState("", storage_key="lstm-sentiment-lab-owner")
    lab = PRESETS["lab"]
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value="lab", label="Preset (every value stays editable)", scale=1)
        preset_note = gr.Markdown(f"**lab**: {lab.description}", elem_id="preset-note")
    with gr.Row():
        source = gr.Radio([("Bundled Amazon sample (17,974 real reviews; quick)", "bundled"),
                           (f"Sample + {MORE_REVIEW_COUNT:,} more real reviews (the default model's data)", "bundled+more"),
                           ("Upload a file", "upload")], value="bundled", label="Data")
        # No file_types: Gradio would refuse other files before `data_path` does, with a traceback in the log.
        upload = gr.File(label=f"fastText .txt/.bz2/.gz or CSV/TSV with a header (≤ {SETTINGS.max_upload_mb} MB)",
                         interactive=SETTINGS.allow_uploads, height=150, elem_id="upload")
        limit = gr.Number(value=lab.train.limit, label="Row limit",
                          info="reviews read (from each source in proportion to its size); 0 = every review")
        name = gr.Textbox(value="my-model", label="Checkpoint name")
    specs = [(*spec, value) for spec, value in zip(HYPER_PARAMETERS, preset_values("lab"))]
    rows = [specs[sum(ROWS[:i]) : sum(ROWS[: i + 1])] for i in range(len(ROWS))]
    with gr.Row(equal_height=True):
        made = [hyper_parameter_input(*spec) for spec in rows[0]]
    with gr.Accordion("Advanced: readout, pre-training, regularisation, schedule, vocabulary, device", open=False,
                      elem_id="advanced"):
        for row in rows[1:]:
            with gr.Row(equal_height=True):
                made += [hyper_parameter_input(*spec) for spec in row]
    with gr.Row():
        start = gr.Button("Start training", variant="primary", interactive=SETTINGS.allow_training)
        stop = gr.Button("Stop", variant="stop")
    status = gr.Markdown("No training run yet.", elem_id="train-status")
    placeholder = gr.Markdown("*The loss and accuracy curves appear here with the first training step.*")
    curves = gr.Plot(label="Loss and accuracy", visible=False, elem_id="train-curves")
    with gr.Row():
        report, confusion = gr.Markdown(), gr.Plot(label="Confusion matrix", visible=False)
    download = gr.File(label="Checkpoint (download)", interactive=False, visible=False)

    outputs = [status, placeholder, curves, report, confusion, download]
    # Callable by scripts, left out of the API page and the MCP tools: an LLM client has no business starting runs.
    script = dict(api_visibility="undocumented")
    preset.change(apply_preset, preset, [*made, limit, preset_note], api_name="preset", preprocess=False, **script)
    start.click(start_training, [source, upload, limit, name, owner, *made], outputs, api_name="train",
                concurrency_limit=None, preprocess=False, **script).then(
        available_checkpoints, checkpoint, checkpoint, api_visibility="private")
    stop.click(stop_training, owner, status, api_name="stop_training", **script)
    demo.load(new_owner_token, owner, owner, api_visibility="private")
    demo.load(watch_training, None, outputs, api_name="watch_training", concurrency_limit=None, **script)
    demo.load(available_checkpoints, checkpoint, checkpoint, api_name="list_checkpoints")


# ---------------------------------------------------------------- Memory tab

def memory_predictors(names: object) -> dict[str, Predictor]:
    if not isinstance(names, list) or not names:
        raise ConfigError("Choose at least one checkpoint to compare.")
    return {str(name): cached_predictor(name) for name in names[:6]}


@endpoint
def compare_memory(review: str, names: list[str]):
    """Gradient flow and the prediction after each token of one review for several checkpoints, and what the first
    LSTM among them (else the first model) keeps from token to token.

    Args:
        review: a review; the Memory tab's example opens with its verdict, then a long neutral middle.
        names: checkpoint file names, e.g. ["rnn.pt", "gru.pt", "lstm.pt"].
    """
    text, chosen = review_text(review), memory_predictors(names)
    norms, trajectories, lines, first, far = {}, {}, [], None, 0
    for name, predictor in chosen.items():
        tokens, ids = encode_review(text, predictor.vocab, predictor.max_len)
        if not ids:
            raise ConfigError("Nothing to read in this review: it has no words.")
        label = f"{name} ({predictor.model.config.cell.upper()})"
        norms[label] = gradient_norms(predictor.model, ids)
        explanation = explain(predictor, text)
        trajectories[label] = explanation.inspection.trace.trajectory
        if first is None or (predictor.model.config.cell == "lstm" and first[1].model.config.cell != "lstm"):
            first = (explanation, predictor)  # what the first LSTM keeps, else the first model
        far = min(50, len(ids) - 1)
        lines.append(f"| {label} | {explanation.probability:.3f} | {norms[label][-1]:.2e} | "
                     f"{norms[label][-1 - far]:.2e} | {gradient_drop(norms[label], far):,.0f}× |")
    explanation, predictor = first
    trace = explanation.inspection.trace
    kept = plots.memory_heatmaps(explanation.layer, trace.tokens, explanation.units)
    table = (f"| checkpoint | P(positive) | gradient at the last token | at {far} tokens from the end | falls by |\n"
             "|---|---|---|---|---|\n" + "\n".join(lines))
    return plots.gradient_flow_figure(norms), plots.trajectories_figure(trajectories, trace.tokens), kept, table


@endpoint
def run_memory_experiment(cells: list[str], distances: list, forget_bias: float, steps: float):
    """Train small RNN, GRU and LSTM models on a synthetic memory task (not reviews) for each distance, streaming
    accuracy against distance as each model finishes.

    Args:
        cells: cell types among "rnn", "gru", "lstm".
        distances: steps between the marker to remember and the end, each 1 to 100.
        forget_bias: the LSTM's forget-gate bias at the start, -10 to 10.
        steps: most training steps per model, 1 to 5,000.
    """
    if not isinstance(cells, list) or not isinstance(distances, list):
        raise ConfigError("Choose at least one cell type and one distance.")
    for cell in cells:
        if cell not in CELLS:
            raise ConfigError(f"cell types must be among {', '.join(CELLS)}; got {str(cell)[:40]!r}")
    distances = [whole_number(d, "distance", 1, 100) for d in distances]
    check_range("forget-gate bias", forget_bias, -10.0, 10.0, integer=False)
    settings = MemorySettings(forget_bias=float(forget_bias),
                              steps=whole_number(steps, "most training steps per model", 1, 5000))
    results, started, total = [], time.perf_counter(), len(cells) * len(distances)
    for result in memory_experiment(list(dict.fromkeys(cells)), sorted(set(distances)), settings.validate()):
        results.append(result)
        rows = "\n".join(f"| {r.cell.upper()} | {r.distance} | {r.accuracy:.1%} | {r.steps:,} | {r.seconds:.1f} s |"
                         for r in results)
        yield (plots.memory_figure(results),
               f"**{len(results)} of {total} models trained** ({time.perf_counter() - started:.0f} s)\n\n"
               "| cell | distance | test accuracy | steps | time |\n|---|---|---|---|---|\n" + rows)


@endpoint
def compare_length_accuracy(names: list[str]):
    """Test accuracy per review-length bucket for each chosen checkpoint, on its own held-out split.

    Args:
        names: checkpoint file names, e.g. ["default.pt"].
    """
    buckets = {f"{name} ({p.model.config.cell.upper()})": accuracy_by_length(p)
               for name, p in memory_predictors(names).items()}
    return plots.length_accuracy_figure(buckets)


def memory_tab() -> None:
    """Lays out the Memory tab and wires its events."""
    gr.Markdown(
        "### Why LSTMs remember\nA plain RNN rewrites its whole hidden state at every token, so what it read long ago "
        "fades: the gradient that would teach it to use an early word shrinks at every step back (it *vanishes*). An "
        "LSTM's cell state is only scaled by its forget gate and added to; a GRU's update gate does the same for its "
        "hidden state. Below, one review goes through an RNN, a GRU and the default LSTM, all trained on the bundled "
        "reviews.")
    checkpoints = list_checkpoints()
    with gr.Row():
        review = gr.Textbox(MEMORY_EXAMPLE, label="Review (verdict first, then a long neutral middle)", lines=4,
                            max_length=MAX_REVIEW_CHARS, scale=3)
        with gr.Column(scale=2):
            names = gr.Dropdown(checkpoints, value=[c for c in MEMORY_CHECKPOINTS if c in checkpoints], multiselect=True,
                                label="Checkpoints to compare", allow_custom_value=True)
            compare = gr.Button("Compare", variant="primary")
    gr.Markdown("**What to look for.** Left: on a log scale, how much the prediction depends on each token, against its "
                "distance from the end; a curve that drops steeply is a vanishing gradient. Right: the prediction after "
                "each token; a model that remembers keeps the opening verdict through the neutral middle.")
    with gr.Row():
        gradient, trajectories = gr.Plot(label="Gradient flow"), gr.Plot(label="Prediction after each token")
    table = gr.Markdown()
    gr.Markdown("**What the LSTM keeps** (the first LSTM chosen, its last layer): a forget gate near 1 holds the cell "
                "state steady across the neutral middle. (With no LSTM chosen: a GRU's update gate and hidden state.)")
    kept = gr.Plot(label="Forget gate and cell state")
    gr.Markdown("### A memory task you can train in seconds\n**Synthetic data, not reviews.** Each sequence is random "
                "noise tokens with one marker (A or B) *distance* steps before the end; the label is the marker, so only "
                "memory can solve it (50% is chance). Try the LSTM's forget-gate bias at 1 and at 3.")
    with gr.Row():
        cells = gr.CheckboxGroup(list(CELLS), value=["rnn", "gru", "lstm"], label="Cell types")
        distances = gr.CheckboxGroup([5, 10, 20, 50, 100], value=[5, 20, 50], label="Distances")
        forget_bias = gr.Number(1.0, label="LSTM forget-gate bias at start")
        steps = gr.Number(MemorySettings().steps, label="most training steps per model")
    run = gr.Button("Run the memory experiment", variant="primary")
    with gr.Row():
        memory_plot, memory_table = gr.Plot(label="Accuracy against distance"), gr.Markdown()
    gr.Markdown("### Where each model loses track on real reviews\nTest accuracy on each checkpoint's own held-out "
                "reviews, grouped by review length.")
    lengths = gr.Button("Accuracy by review length")
    length_plot = gr.Plot(label="Accuracy by review length")

    raw = dict(preprocess=False)
    compare.click(compare_memory, [review, names], [gradient, trajectories, kept, table], api_name="compare_memory", **raw)
    run.click(run_memory_experiment, [cells, distances, forget_bias, steps], [memory_plot, memory_table],
              api_name="memory_experiment", concurrency_limit=1, api_visibility="undocumented", **raw)
    lengths.click(compare_length_accuracy, names, length_plot, api_name="accuracy_by_length", concurrency_limit=1, **raw)


# ---------------------------------------------------------------- LSTM playground tab

@endpoint
def playground(cell: str, input_size: float, hidden_size: float, num_layers: float, batch_size: float, seq_len: float,
               batch_first: bool, bidirectional: bool):
    """Build a real nn.LSTM (nn.GRU, nn.RNN) of the given sizes, run it once on zeros, and describe it.

    Args:
        cell: "lstm", "gru" or "rnn".
        input_size: features per step, 1 to 4,096.
        hidden_size: units per layer, 1 to 4,096.
        num_layers: stacked layers, 1 to 8.
        batch_size: sequences per batch, 1 to 1,024.
        seq_len: steps per sequence, 1 to 2,000.
        batch_first: whether tensors are (batch, seq, feature) rather than (seq, batch, feature).
        bidirectional: whether each layer also reads right to left.

    Returns:
        the equivalent PyTorch code
        a table of the shapes of the input, the start state, the output, h_n (and c_n), each with its meaning
        the many-to-one and many-to-many slices, in Markdown
        a table of each weight's shape and parameter count
        the total number of parameters and what each weight stacks, in Markdown
        an unrolled diagram, as a plotly figure
    """
    sizes = [whole_number(value, name, 1, SIZES[name]) for value, name in
             zip((input_size, hidden_size, num_layers, batch_size, seq_len), SIZES)]
    shapes = describe_cell(str(cell), *sizes, batch_first is True, bidirectional is True)
    return (shapes.code, shapes.shapes, f"{shapes.many_to_one}\n\n{shapes.many_to_many}", shapes.parameters,
            f"**{shapes.total_parameters:,} parameters.** {shapes.stacking}",
            unrolled_diagram(str(cell), sizes[2], sizes[4], bidirectional is True))


def playground_tab(demo: gr.Blocks) -> None:
    """Lays out the playground tab and wires its events."""
    gr.Markdown("Pick a cell type and the sizes; the module is built and run for real, and every shape below is "
                "what PyTorch returned.")
    with gr.Row():
        cell = gr.Radio([("LSTM", "lstm"), ("GRU", "gru"), ("RNN", "rnn")], value="lstm", label="cell type")
        input_size, hidden_size = gr.Number(5, label="input size"), gr.Number(10, label="hidden size")
        num_layers, batch_size = gr.Number(1, label="layers"), gr.Number(1, label="batch")
        seq_len = gr.Number(3, label="sequence length")
        batch_first, bidirectional = gr.Checkbox(True, label="batch_first"), gr.Checkbox(False, label="bidirectional")
    show = gr.Button("Show shapes", variant="primary")
    with gr.Row():
        code, diagram = gr.Code(language="python", label="Equivalent PyTorch"), gr.Plot(label="Unrolled")
    shapes = gr.Dataframe(headers=["tensor", "shape", "meaning"], label="Shapes", interactive=False, elem_id="shape-table")
    slices = gr.Markdown()
    parameters = gr.Dataframe(headers=["weight", "shape", "count"], label="Parameters", interactive=False)
    total = gr.Markdown()

    inputs = [cell, input_size, hidden_size, num_layers, batch_size, seq_len, batch_first, bidirectional]
    outputs = [code, shapes, slices, parameters, total, diagram]
    show.click(playground, inputs, outputs, api_name="playground", preprocess=False)
    cell.change(playground, inputs, outputs, api_visibility="private", preprocess=False)
    demo.load(playground, inputs, outputs, api_visibility="private", preprocess=False)


# ---------------------------------------------------------------- the page

def build_demo() -> gr.Blocks:
    public = (" **Public demo:** training runs are capped in size and time"
              + ("" if SETTINGS.allow_uploads else ", uploads are off") + "." if SETTINGS.public else "")
    with gr.Blocks(title="LSTM Sentiment Lab") as demo:
        gr.Markdown("# LSTM Sentiment Lab\nTrain an LSTM on real Amazon reviews, take the layer apart, and watch its "
                    f"gates decide. Running on **{DEVICE}**.{public}", elem_id="header")
        with gr.Tabs():
            with gr.Tab("Predict", id="predict", elem_id="predict-tab"):
                checkpoint = predict_tab()
            with gr.Tab("Train", id="train", elem_id="train-tab"):
                train_tab(demo, checkpoint)
            with gr.Tab("Memory", id="memory", elem_id="memory-tab"):
                memory_tab()
            with gr.Tab("LSTM playground", id="playground", elem_id="playground-tab"):
                playground_tab(demo)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="LSTM Sentiment Lab")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860; GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also serve through a public Gradio share link")
    parser.add_argument("--auth", default=None, help="USER:PASSWORD for basic auth (or SENTIMENT_AUTH)")
    parser.add_argument("--mcp", action="store_true", help="also serve the tools to LLM clients over MCP")
    return parser.parse_args(argv)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'USER:PASSWORD' → (user, password) for Gradio's basic auth; None or '' → no auth."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not (user and colon and password):
        raise ConfigError("--auth / SENTIMENT_AUTH must look like USER:PASSWORD")
    return user, password


def upload_limit(settings: Settings) -> str:
    """Gradio's own limit on an uploaded file, checked as it arrives: the setting's, or nothing at all (0 bytes) when
    uploads are off, so that a public demo refuses them at the HTTP level too, not only in the Train handler."""
    return f"{settings.max_upload_mb if settings.allow_uploads else 0}mb"


def main(argv: list[str] | None = None) -> None:
    global SETTINGS
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        auth = parse_auth(args.auth or os.environ.get("SENTIMENT_AUTH"))
        SETTINGS = Settings.from_env(share=args.share)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    if args.share and not auth:
        print("--share serves this app at a public gradio.live address that anyone with the link can open for a week "
              "(predict, train within the public limits, the playground). Add --auth USER:PASSWORD to ask for a "
              "password.")
    build_demo().queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth, mcp_server=args.mcp,
        max_file_size=upload_limit(SETTINGS), theme=gr.themes.Soft())


if __name__ == "__main__":
    main()
