"""LSTM Sentiment Lab: train, take apart and question an LSTM sentiment classifier in the browser.

A thin Gradio layer over the `sentiment` package: each handler converts UI values, calls one package function
and turns the result into components. Run `python app.py --help` for host, port, share and auth options.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import time
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

import gradio as gr

from sentiment import plots
from sentiment.checkpoint import (
    CHECKPOINT_DIR, DEFAULT_CHECKPOINT, CheckpointError, PredictorCache, list_checkpoints, resolve_checkpoint,
)
from sentiment.data import BUNDLED_SAMPLE, DataError, check_review_file
from sentiment.gates import ATTRIBUTION_METHODS, DIRECTIONS, inspect_review, top_units, trace_gates, unknown_tokens
from sentiment.memory import (
    MEMORY_CHECKPOINTS, MEMORY_EXAMPLE, MemorySettings, accuracy_by_length, gradient_drop, gradient_norms,
    memory_experiment,
)
from sentiment.model import CELLS, ConfigError, ModelConfig, check_range, describe_device, pick_device
from sentiment.playground import describe_lstm, unrolled_diagram
from sentiment.preprocessing import encode_review
from sentiment.presets import PRESETS
from sentiment.runner import PublicLimits, RunInProgress, RunState, TrainingRunner
from sentiment.trainer import PRECISIONS, SCHEDULES, TrainConfig

MAX_REVIEW_CHARS = 2_000_000
UPLOAD_TYPES = [".txt", ".bz2", ".gz", ".csv", ".tsv"]


@dataclass(frozen=True)
class Settings:
    """Deployment switches, from the environment (see the README's 'Public demos' section)."""

    public: bool = False
    allow_training: bool = True
    allow_uploads: bool = True
    max_upload_mb: int = 100

    @classmethod
    def from_env(cls) -> Settings:
        def flag(name: str, default: bool) -> bool:
            return os.environ.get(name, str(int(default))).strip().lower() in ("1", "true", "yes", "on")

        public = flag("SENTIMENT_PUBLIC", False)
        return cls(
            public=public,
            allow_training=flag("SENTIMENT_ALLOW_TRAINING", True),
            allow_uploads=flag("SENTIMENT_ALLOW_UPLOADS", not public),
            max_upload_mb=int(os.environ.get("SENTIMENT_MAX_UPLOAD_MB", "100")),
        )


SETTINGS = Settings.from_env()
LIMITS = PublicLimits() if SETTINGS.public else None
DEVICE = describe_device(pick_device("auto"))
runner = TrainingRunner()
predictors = PredictorCache()

# The hyper-parameters the Train tab shows, in order: (dataclass, field, label).
HYPER_PARAMETERS = [
    (ModelConfig, "embedding_dim", "embedding size"),
    (ModelConfig, "hidden_size", "LSTM hidden size"),
    (ModelConfig, "num_layers", "LSTM layers"),
    (ModelConfig, "dropout", "dropout"),
    (ModelConfig, "embedding_dropout", "embedding dropout"),
    (ModelConfig, "bidirectional", "bidirectional"),
    (ModelConfig, "cell", "cell type"),
    (ModelConfig, "forget_bias", "LSTM forget-gate bias at start (empty: PyTorch's init)"),
    (ModelConfig, "learned_state", "learn the start state h0, c0"),
    (TrainConfig, "lr", "learning rate"),
    (TrainConfig, "batch_size", "batch size"),
    (TrainConfig, "epochs", "epochs"),
    (TrainConfig, "max_steps", "max steps (0 = no limit)"),
    (TrainConfig, "schedule", "learning-rate schedule"),
    (TrainConfig, "weight_decay", "weight decay"),
    (TrainConfig, "clip", "gradient clipping (0 = off)"),
    (TrainConfig, "eval_every", "validate every N steps (0 = each epoch)"),
    (TrainConfig, "patience", "early-stop patience (0 = off)"),
    (TrainConfig, "max_len", "tokens per review"),
    (TrainConfig, "min_freq", "min token count"),
    (TrainConfig, "max_vocab", "max vocabulary (0 = no limit)"),
    (TrainConfig, "ema", "weight averaging: EMA decay (0 = off)"),
    (TrainConfig, "seed", "seed"),
    (TrainConfig, "device", "device"),
    (TrainConfig, "precision", "precision"),
]
EXAMPLES = [
    "Best purchase this year: The blender is quiet, powerful and easy to clean. I use it every morning and love it.",
    "Complete waste of money: It stopped working after two days and customer service never answered my emails.",
    "Not good, not worth it: I was not impressed. The sound is not bad, but it is not what I expected and I would not buy it again.",
    "Long but fair: " + " ".join([
        "I bought this coffee grinder after reading many reviews and comparing it with three other models.",
        "The first week it worked fine, although the container is smaller than the pictures suggest.",
        "In the second week the lid began to crack near the hinge and the motor started to smell when grinding for more than a minute.",
        "I contacted the seller, who offered a replacement, and the new one has the same weak lid.",
        "The grind is uniform and the price is low, yet I cannot recommend a grinder that breaks so quickly.",
        "Overall I am disappointed and I am returning it.",
    ]),
]


# ---------------------------------------------------------------- Train tab handlers

def _field(cls, name):
    return next(f for f in fields(cls) if f.name == name)


def _preset_values(name: str) -> list:
    preset = PRESETS[name]
    return [getattr(preset.model if cls is ModelConfig else preset.train, field) for cls, field, _ in HYPER_PARAMETERS]


def apply_preset(name: str) -> list:
    """Fill every hyper-parameter box with a preset's values, and its row limit."""
    if name not in PRESETS:
        raise gr.Error(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return [*_preset_values(name), PRESETS[name].train.limit]


def _configs(values: list, limit) -> tuple[TrainConfig, ModelConfig]:
    """UI values → the two config dataclasses; anything missing or not a number is a ConfigError."""
    chosen = {ModelConfig: {}, TrainConfig: {}}
    for (cls, name, label), value in zip(HYPER_PARAMETERS, [*values]):
        default = _field(cls, name).default
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
                raise ConfigError(f"{label} must be a number; got {value!r}") from None
            if isinstance(default, int) and not number.is_integer():
                raise ConfigError(f"{label} must be a whole number; got {value!r}")
            chosen[cls][name] = int(number) if isinstance(default, int) else number
    try:
        rows = float(limit or 0)
    except (TypeError, ValueError):
        rows = math.nan
    if not rows.is_integer():
        raise ConfigError(f"row limit must be a whole number; got {limit!r}")
    chosen[TrainConfig]["limit"] = int(rows)
    return TrainConfig(**chosen[TrainConfig]), ModelConfig(**chosen[ModelConfig])


def _checkpoint_path(name: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", (name or "").strip()).strip("-.")[:60] or "my-model"
    path = CHECKPOINT_DIR / f"{stem}.pt"
    if path.exists() or path.name == DEFAULT_CHECKPOINT.name:  # never overwrite a saved checkpoint
        path = CHECKPOINT_DIR / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}.pt"
    return path


def _data_path(source: str, upload) -> Path:
    if source == "bundled":
        return BUNDLED_SAMPLE
    if not SETTINGS.allow_uploads:
        raise DataError("Uploads are turned off on this public demo; train on the bundled sample.")
    if not upload:
        raise DataError("Choose a file to upload first (fastText .txt/.bz2/.gz, or CSV/TSV with a header).")
    path = Path(upload if isinstance(upload, str) else upload.name)
    if not any(path.name.lower().endswith(s) for s in UPLOAD_TYPES):
        raise DataError(f"{path.name}: expected one of {', '.join(UPLOAD_TYPES)}")
    if path.stat().st_size > SETTINGS.max_upload_mb * 1024 * 1024:
        raise DataError(f"{path.name}: larger than the {SETTINGS.max_upload_mb} MB upload limit")
    check_review_file(path)
    return path


def _train_view(state: RunState) -> tuple:
    """Status line, curves, report, confusion matrix and checkpoint file for a run state."""
    step = state.step
    if state.active and step:
        status = (f"**Training** on {state.data_name} · step {step.step:,}/{step.total_steps:,} · epoch {step.epoch} · "
                  f"loss {step.train_loss:.3f} · {step.reviews_per_s:,.0f} reviews/s · ETA {step.eta_s:,.0f} s")
    else:
        status = f"**{state.status.capitalize()}** · {state.message}" if state.status != "idle" else state.message
    finished = state.finished
    report, confusion, checkpoint = "", None, None
    if finished and finished.report:
        r = finished.report
        report = (f"### Test report ({r.n:,} held-out reviews)\n\n| accuracy | F1 | precision | recall | loss |\n|---|---|---|---|---|\n"
                  f"| **{r.accuracy:.2%}** | {r.f1:.2%} | {r.precision:.2%} | {r.recall:.2%} | {r.loss:.4f} |\n\n"
                  f"Saved as `{finished.checkpoint.name}`: it is now in the Predict tab's list.")
        confusion = plots.confusion_figure(r.confusion)
        checkpoint = str(finished.checkpoint)
    return (gr.Markdown(status), plots.training_curves(state.history), gr.Markdown(report),
            confusion, gr.File(value=checkpoint))


def watch_training():
    """Stream the current (or last) run until it ends; a page refresh re-attaches here."""
    state = runner.snapshot()
    yield _train_view(state)
    while state.active:
        newer = runner.wait_for_change(state.version, timeout=2.0)
        if newer.version != state.version:
            state = newer
            yield _train_view(state)
            time.sleep(0.5)  # at most two updates a second: the chart stays smooth and the page light


def start_training(source: str, upload, limit, name: str, owner: str, *values):
    """Start a run with the chosen data and hyper-parameters, then stream its progress."""
    if not SETTINGS.allow_training:
        raise gr.Error("Training is turned off on this public demo. Try the Predict and Playground tabs.")
    try:
        config, model_config = _configs(list(values), limit)
        notes = ""
        if LIMITS:
            config, model_config, notes = LIMITS.apply(config, model_config)
        runner.start(config, model_config, _data_path(source, upload), _checkpoint_path(name), owner=owner or None,
                     max_seconds=LIMITS.max_seconds if LIMITS else None)
    except (ConfigError, DataError, RunInProgress) as e:
        raise gr.Error(str(e)) from None
    if notes:
        gr.Info(notes)
    yield from watch_training()


def stop_training(owner: str) -> gr.Markdown:
    return gr.Markdown(runner.stop(owner or None))


def new_owner_token(token: str) -> str:
    """A random id kept in this browser's storage: it lets the browser that started a run stop it."""
    return token or secrets.token_hex(16)


def refresh_checkpoints(current: str) -> gr.Dropdown:
    choices = list_checkpoints()
    return gr.Dropdown(choices=choices, value=current if current in choices else (choices[0] if choices else None))


# ---------------------------------------------------------------- Playground tab handler

def show_lstm_shapes(input_size, hidden_size, num_layers, batch_size, seq_len, batch_first, bidirectional):
    try:
        d = describe_lstm(input_size, hidden_size, num_layers, batch_size, seq_len, bool(batch_first), bool(bidirectional))
    except ConfigError as e:
        raise gr.Error(str(e)) from None
    return (
        gr.Code(value=d.code),
        gr.Dataframe(value=d.shapes),
        gr.Markdown(f"{d.many_to_one}\n\n{d.many_to_many}"),
        gr.Dataframe(value=d.parameters),
        gr.Markdown(f"**{d.total_parameters:,} parameters.** Each weight stacks the four gates (i, f, g, o): "
                    f"that is why its first dimension is 4 × {int(hidden_size)} = {4 * int(hidden_size)}."),
        unrolled_diagram(int(num_layers), int(seq_len), bool(bidirectional)),
    )


# ---------------------------------------------------------------- Predict tab handlers

def checkpoint_layers(checkpoint: str) -> gr.Dropdown:
    """The layer (and direction) choices of a checkpoint's model."""
    try:
        config = predictors.get(resolve_checkpoint(checkpoint)).model.config
    except CheckpointError as e:
        raise gr.Error(str(e)) from None
    choices = [f"layer {k + 1}" + (f" {d}" if config.bidirectional else "")
               for k in range(config.num_layers) for d in DIRECTIONS[: config.directions]]
    return gr.Dropdown(choices=choices, value=choices[-1] if not config.bidirectional else choices[-2])


def _check_review(review) -> None:
    if not isinstance(review, str) or not review.strip():
        raise gr.Error("The review is empty: type or paste a customer review first.")
    if len(review) > MAX_REVIEW_CHARS:
        raise gr.Error(f"The review is {len(review):,} characters; the limit is {MAX_REVIEW_CHARS:,}.")


def predict_review(review: str, checkpoint: str, layer_choice: str, units: float, attribution: str = "when read"):
    """Label, probability, token attributions, prediction trajectory and gate plots for one review."""
    _check_review(review)
    try:
        predictor = predictors.get(resolve_checkpoint(checkpoint))
        inspection = inspect_review(predictor.model, predictor.vocab, review, predictor.max_len, attribution)
    except CheckpointError as e:
        raise gr.Error(str(e)) from None
    except ValueError as e:
        raise gr.Error(f"Nothing to read in this review: {e}.") from None
    config = predictor.model.config
    match = re.fullmatch(r"layer (\d+)(?: (forward|backward))?", layer_choice or "")
    layer = min(int(match.group(1)) - 1, config.num_layers - 1) if match else config.num_layers - 1
    direction = (match.group(2) if match and match.group(2) else "forward") if config.bidirectional else "forward"
    trace, attributions = inspection.trace, inspection.attributions
    chosen = top_units(trace, predictor.model, layer, direction, int(units or 12))
    p = trace.probability
    unknown = unknown_tokens(trace.tokens, trace.ids)
    summary = (
        f"**{'Positive' if p >= 0.5 else 'Negative'}** with P(positive) = {p:.3f} · {len(trace.tokens)} tokens read"
        + (f" (only the first {predictor.max_len})" if len(trace.tokens) == predictor.max_len else "")
        + (f" · {len(unknown)} unknown to this model (shown as _UNK): {', '.join(sorted(set(unknown))[:12])}" if unknown else "")
        + f"\n\nToken colours and bars, effect **{attributions.method}**: {attributions.description} "
        "(towards +1: pushed the review positive; towards -1: negative). "
        f"The trace reproduces `nn.{type(predictor.model.rnn).__name__}` to {trace.max_error:.1e}. Units shown: the {len(chosen)} "
        + ("that move the final logit most (|h_T · w_out|)." if layer == config.num_layers - 1 else "whose hidden state varies most.")
    )
    layer_trace = trace.layer(layer, direction)
    return (
        gr.Label(value={"positive": p, "negative": 1 - p}),
        gr.Markdown(summary),
        gr.HighlightedText(value=plots.attribution_highlights(attributions)),
        plots.trajectory_figure(trace),
        plots.attribution_figure(attributions),
        plots.gate_heatmaps(layer_trace, trace.tokens, chosen),
        plots.state_heatmaps(layer_trace, trace.tokens, chosen),
        plots.mean_gate_figure(layer_trace, trace.tokens),
    )


# ---------------------------------------------------------------- Memory tab handlers

def _predictors(names: list[str]) -> dict[str, object]:
    if not names:
        raise gr.Error("Choose at least one checkpoint to compare.")
    try:
        return {name: predictors.get(resolve_checkpoint(name)) for name in names}
    except CheckpointError as e:
        raise gr.Error(str(e)) from None


def _cell_name(predictor) -> str:
    return predictor.model.config.cell.upper()


def compare_memory(review: str, names: list[str], units: float = 12):
    """Gradient flow and prediction after each token for one review and each checkpoint, and what the first LSTM
    among them (else the first model) keeps from token to token."""
    _check_review(review)
    chosen = _predictors(names)
    norms, trajectories, lines, first = {}, {}, [], None
    for name, predictor in chosen.items():
        tokens, ids = encode_review(review, predictor.vocab, predictor.max_len)
        if not ids:
            raise gr.Error("Nothing to read in this review: it has no words.")
        label = f"{name} ({_cell_name(predictor)})"
        norms[label] = gradient_norms(predictor.model, ids)
        trace = trace_gates(predictor.model, ids, tokens)
        trajectories[label] = trace.trajectory
        if first is None or (predictor.model.config.cell == "lstm" and first[1].model.config.cell != "lstm"):
            first = (trace, predictor)  # show what the first LSTM keeps, else the first model
        far = min(50, len(ids) - 1)
        lines.append(f"| {label} | {trace.probability:.3f} | {norms[label][-1]:.2e} | {norms[label][-1 - far]:.2e} | "
                     f"{gradient_drop(norms[label], far):,.0f}× |")
    trace, predictor = first
    layer = trace.layer(predictor.model.config.num_layers - 1)
    kept = plots.memory_heatmaps(layer, trace.tokens, top_units(trace, predictor.model, layer.layer, count=int(units or 12)))
    table = (f"| checkpoint | P(positive) | gradient at the last token | at {far} tokens from the end | falls by |\n"
             "|---|---|---|---|---|\n" + "\n".join(lines))
    return (plots.gradient_flow_figure(norms), plots.trajectories_figure(trajectories, trace.tokens), kept,
            gr.Markdown(table))


def run_memory_experiment(cells: list[str], distances: list, forget_bias: float, steps: float):
    """Train a small model per cell type and distance on the synthetic task, streaming the curve as results come."""
    try:
        forget_bias, steps = float(forget_bias), float(steps)
    except (TypeError, ValueError):
        raise gr.Error("The forget-gate bias and the number of steps must be numbers.") from None
    try:
        check_range("most training steps per model", steps, 1, 100_000)
        settings = MemorySettings(forget_bias=forget_bias, steps=int(steps)).validate()
        results = []
        started = time.perf_counter()
        total = len(cells or []) * len(distances or [])
        for result in memory_experiment(cells or [], [int(d) for d in distances or []], settings):
            results.append(result)
            rows = "\n".join(f"| {r.cell.upper()} | {r.distance} | {r.accuracy:.1%} | {r.steps:,} | {r.seconds:.1f} s |"
                             for r in results)
            yield (plots.memory_figure(results),
                   gr.Markdown(f"**{len(results)} of {total} models trained** ({time.perf_counter() - started:.0f} s)\n\n"
                               "| cell | distance | test accuracy | steps | time |\n|---|---|---|---|---|\n" + rows))
    except (ConfigError, ValueError) as e:
        raise gr.Error(str(e)) from None


def compare_length_accuracy(names: list[str]):
    """Test accuracy per review-length bucket for each chosen checkpoint (on its own held-out split)."""
    try:
        buckets = {f"{name} ({_cell_name(p)})": accuracy_by_length(p) for name, p in _predictors(names).items()}
    except DataError as e:
        raise gr.Error(str(e)) from None
    return plots.length_accuracy_figure(buckets)


# ---------------------------------------------------------------- Layout

def _hyper_parameter_input(cls, name: str, label: str, value):
    if name == "schedule":
        return gr.Dropdown(list(SCHEDULES), value=value, label=label)
    if name == "device":
        return gr.Dropdown(["auto", "cpu", "cuda"], value=value, label=label)
    if name == "cell":
        return gr.Dropdown(list(CELLS), value=value, label=label)
    if name == "precision":
        return gr.Dropdown(list(PRECISIONS), value=value, label=label)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=label)
    # No precision rounding: Gradio would silently turn 2.5 layers into 2; _configs refuses it with a message.
    return gr.Number(value=value, label=label, step=1 if isinstance(value, int) else None)


def build_demo() -> gr.Blocks:
    lab = PRESETS["lab"]
    with gr.Blocks(title="LSTM Sentiment Lab") as demo:
        owner = gr.BrowserState("", storage_key="lstm-sentiment-lab-owner")
        gr.Markdown(
            "# LSTM Sentiment Lab\n"
            "Train an LSTM on real Amazon reviews, take the layer apart, and watch its gates decide. "
            f"Running on **{DEVICE}**."
            + (" This is a public demo: training runs are capped in size and time." if SETTINGS.public else "")
        )
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                with gr.Row():
                    with gr.Column(scale=3):
                        review = gr.Textbox(label="Review", lines=5, max_length=MAX_REVIEW_CHARS,
                                            placeholder="Type or paste a customer review …")
                        gr.Examples(EXAMPLES, inputs=review, label="Examples: positive, negative, negation, long")
                    with gr.Column(scale=2):
                        checkpoints = list_checkpoints()
                        # Custom values allowed: runs finished after this page loaded must be choosable too;
                        # resolve_checkpoint refuses anything that is not a plain file in checkpoints/.
                        checkpoint = gr.Dropdown(checkpoints, value=checkpoints[0] if checkpoints else None,
                                                 label="Checkpoint (the shipped default first)", allow_custom_value=True)
                        layer_choice = gr.Dropdown(["layer 1"], value="layer 1", label="Layer to inspect",
                                                   allow_custom_value=True)
                        units = gr.Slider(1, 64, value=12, step=1, label="Units to show")
                        attribution = gr.Radio(list(ATTRIBUTION_METHODS), value="when read",
                                               label="Token effect (occlusion with _UNK)",
                                               info="when read: instant; on the final prediction: re-scores the "
                                                    "review once per token")
                        predict_button = gr.Button("Predict and explain", variant="primary")
                with gr.Row():
                    label = gr.Label(label="Sentiment", num_top_classes=2, scale=1)
                    summary = gr.Markdown(scale=3)
                highlights = gr.HighlightedText(label="What each token did (occlusion with _UNK)", combine_adjacent=False,
                                                elem_id="token-effects",
                                                show_legend=True)
                with gr.Row():
                    trajectory = gr.Plot(label="Prediction after each token")
                    attribution_bars = gr.Plot(label="Token attributions")
                gates = gr.Plot(label="Gates")
                states = gr.Plot(label="Cell and hidden state")
                mean_gates = gr.Plot(label="Mean gate activation")

            with gr.Tab("Train", id="train"):
                with gr.Row():
                    with gr.Column(scale=2):
                        source = gr.Radio([("Bundled Amazon sample (17,974 real reviews)", "bundled"),
                                           ("Upload a file", "upload")], value="bundled", label="Data")
                        upload = gr.File(label=f"fastText .txt/.bz2/.gz or CSV/TSV with a header (≤ {SETTINGS.max_upload_mb} MB)",
                                         file_types=UPLOAD_TYPES, interactive=SETTINGS.allow_uploads)
                        limit = gr.Number(value=lab.train.limit, step=1, label="Row limit (0 = every review)")
                        name = gr.Textbox(value="my-model", label="Checkpoint name")
                    with gr.Column(scale=3):
                        gr.Markdown("**Presets** (every value stays editable): " + " · ".join(
                            f"*{n}*: {p.description}" for n, p in PRESETS.items()))
                        with gr.Row():
                            quick_button = gr.Button("Quick CPU run (~1 min)")
                            lab_button = gr.Button("Shipped model recipe")
                            reference_button = gr.Button("Reference values")
                        with gr.Row():
                            hyper = [_hyper_parameter_input(cls, n, lbl, v)
                                     for (cls, n, lbl), v in zip(HYPER_PARAMETERS, _preset_values("lab"))]
                with gr.Row():
                    start_button = gr.Button("Start training", variant="primary", interactive=SETTINGS.allow_training)
                    stop_button = gr.Button("Stop", variant="stop")
                train_status = gr.Markdown("No training run yet.", elem_id="train-status")
                curves = gr.Plot(label="Loss and accuracy")
                with gr.Row():
                    report = gr.Markdown()
                    confusion = gr.Plot(label="Confusion matrix")
                checkpoint_file = gr.File(label="Checkpoint (download)", interactive=False)

            with gr.Tab("Memory", id="memory"):
                gr.Markdown(
                    "### Why LSTMs remember\n"
                    "A plain RNN rewrites its whole hidden state at every token, so what it read long ago fades: the "
                    "gradient that would teach it to use an early word shrinks at every step back (it *vanishes*). "
                    "An LSTM's cell state is only scaled by its forget gate and added to; a GRU's update gate does the "
                    "same for its hidden state. Below, the same review goes through an RNN, a GRU and the default LSTM, "
                    "all trained on the bundled reviews.")
                with gr.Row():
                    with gr.Column(scale=3):
                        memory_review = gr.Textbox(MEMORY_EXAMPLE, label="Review (verdict first, then a long neutral middle)",
                                                   lines=4, max_length=MAX_REVIEW_CHARS)
                    with gr.Column(scale=2):
                        memory_checkpoints = gr.Dropdown(
                            checkpoints, value=[c for c in MEMORY_CHECKPOINTS if c in checkpoints], multiselect=True,
                            label="Checkpoints to compare", allow_custom_value=True)
                        compare_button = gr.Button("Compare", variant="primary")
                gr.Markdown("**What to look for.** Left: on a log scale, how much the prediction depends on each token, "
                            "against its distance from the end. A curve that drops steeply is a vanishing gradient: words "
                            "far back barely count. Right: the prediction after each token. A model that remembers keeps "
                            "the opening verdict through the neutral middle; one that forgets drifts back towards 0.5.")
                with gr.Row():
                    gradient_plot = gr.Plot(label="Gradient flow")
                    trajectories_plot = gr.Plot(label="Prediction after each token")
                gradient_table = gr.Markdown()
                gr.Markdown("**What the LSTM keeps** (the first LSTM chosen, its last layer): a forget gate near 1 holds "
                            "the cell state steady across the neutral middle, so the opening verdict is still there at "
                            "the end. (With no LSTM chosen: a GRU's update gate and hidden state, or an RNN's hidden state.)")
                kept_plot = gr.Plot(label="Forget gate and cell state")

                gr.Markdown("### A memory task you can train in seconds\n"
                            "**Synthetic data, not reviews.** Each sequence is random noise tokens with one marker "
                            "token (A or B) placed *distance* steps before the end; the label is the marker. "
                            "Nothing but memory can solve it: 50% is chance. Small models (hidden size 32) of each "
                            "type are trained from scratch for each distance. Try the LSTM's forget-gate bias at 1 "
                            "(the usual start) and at 3: a cell that starts out keeping its memory learns to use it "
                            "across far longer gaps.")
                with gr.Row():
                    memory_cells = gr.CheckboxGroup(list(CELLS), value=["rnn", "gru", "lstm"], label="Cell types")
                    memory_distances = gr.CheckboxGroup([5, 10, 20, 50, 100], value=[5, 20, 50], label="Distances")
                    memory_forget_bias = gr.Number(1.0, label="LSTM forget-gate bias at start")
                    memory_steps = gr.Number(MemorySettings().steps, step=1, label="most training steps per model")
                memory_button = gr.Button("Run the memory experiment", variant="primary")
                with gr.Row():
                    memory_plot = gr.Plot(label="Accuracy against distance")
                    memory_table = gr.Markdown()

                gr.Markdown("### Where each model loses track on real reviews\n"
                            "Test accuracy on each checkpoint's own held-out reviews, grouped by review length.")
                length_button = gr.Button("Accuracy by review length")
                length_plot = gr.Plot(label="Accuracy by review length")

            with gr.Tab("LSTM playground", id="playground"):
                gr.Markdown("Pick the sizes of an `nn.LSTM`; it is built and run for real, and every shape below "
                            "is what PyTorch returned.")
                with gr.Row():
                    input_size = gr.Number(5, step=1, label="input size")
                    hidden_size = gr.Number(10, step=1, label="hidden size")
                    num_layers = gr.Number(1, step=1, label="layers")
                    batch_size = gr.Number(1, step=1, label="batch")
                    seq_len = gr.Number(3, step=1, label="sequence length")
                    batch_first = gr.Checkbox(True, label="batch_first")
                    bidirectional = gr.Checkbox(False, label="bidirectional")
                shapes_button = gr.Button("Show shapes", variant="primary")
                with gr.Row():
                    code = gr.Code(language="python", label="Equivalent PyTorch")
                    diagram = gr.Plot(label="Unrolled")
                shapes = gr.Dataframe(headers=["tensor", "shape", "meaning"], label="Shapes", interactive=False,
                                      elem_id="shape-table")
                slices = gr.Markdown()
                parameters = gr.Dataframe(headers=["weight", "shape", "count"], label="Parameters", interactive=False)
                total = gr.Markdown()

        # ------------------------------------------------------------ Events
        predict_inputs = [review, checkpoint, layer_choice, units, attribution]
        predict_outputs = [label, summary, highlights, trajectory, attribution_bars, gates, states, mean_gates]
        predict_button.click(predict_review, predict_inputs, predict_outputs, api_name="predict")
        review.submit(predict_review, predict_inputs, predict_outputs, api_name="predict_on_enter", api_visibility="private")
        checkpoint.change(checkpoint_layers, checkpoint, layer_choice, api_name="checkpoint_layers")
        layer_choice.change(predict_review, predict_inputs, predict_outputs, api_name="predict_on_layer",
                            api_visibility="private")
        units.release(predict_review, predict_inputs, predict_outputs, api_name="predict_on_units", api_visibility="private")
        attribution.change(predict_review, predict_inputs, predict_outputs, api_name="predict_on_effect",
                           api_visibility="private")

        preset_outputs = [*hyper, limit]
        for button, preset in ((quick_button, "quick"), (lab_button, "lab"), (reference_button, "reference")):
            button.click(lambda p=preset: apply_preset(p), None, preset_outputs, api_name=f"preset_{preset}")
        train_outputs = [train_status, curves, report, confusion, checkpoint_file]
        start_button.click(
            start_training, [source, upload, limit, name, owner, *hyper], train_outputs,
            api_name="train", concurrency_limit=None,
        ).then(refresh_checkpoints, checkpoint, checkpoint, api_name="refresh_after_training", api_visibility="private")
        stop_button.click(stop_training, owner, train_status, api_name="stop_training")
        demo.load(new_owner_token, owner, owner, api_name="owner_token", api_visibility="private")
        demo.load(watch_training, None, train_outputs, api_name="watch_training", concurrency_limit=None)
        demo.load(checkpoint_layers, checkpoint, layer_choice, api_name="layers_on_load", api_visibility="private")
        demo.load(refresh_checkpoints, checkpoint, checkpoint, api_name="list_checkpoints")

        compare_button.click(compare_memory, [memory_review, memory_checkpoints],
                             [gradient_plot, trajectories_plot, kept_plot, gradient_table], api_name="compare_memory")
        memory_button.click(run_memory_experiment, [memory_cells, memory_distances, memory_forget_bias, memory_steps],
                            [memory_plot, memory_table], api_name="memory_experiment", concurrency_limit=1)
        length_button.click(compare_length_accuracy, memory_checkpoints, length_plot, api_name="accuracy_by_length",
                            concurrency_limit=1)

        playground_inputs = [input_size, hidden_size, num_layers, batch_size, seq_len, batch_first, bidirectional]
        playground_outputs = [code, shapes, slices, parameters, total, diagram]
        shapes_button.click(show_lstm_shapes, playground_inputs, playground_outputs, api_name="playground")
        demo.load(show_lstm_shapes, playground_inputs, playground_outputs, api_name="playground_on_load",
                  api_visibility="private")
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="LSTM Sentiment Lab")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also serve through a public Gradio share link")
    parser.add_argument("--auth", default=os.environ.get("SENTIMENT_AUTH"),
                        help="USER:PASSWORD for basic auth (or set SENTIMENT_AUTH); recommended with --share")
    return parser.parse_args(argv)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'USER:PASSWORD' → (user, password) for Gradio's basic auth; None or '' → no auth."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not (user and colon and password):
        raise ValueError("--auth / SENTIMENT_AUTH must look like USER:PASSWORD")
    return user, password


if __name__ == "__main__":
    args = parse_args()
    try:
        auth = parse_auth(args.auth)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    build_demo().queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth,
        max_file_size=f"{SETTINGS.max_upload_mb}mb", theme=gr.themes.Soft(),
    )
