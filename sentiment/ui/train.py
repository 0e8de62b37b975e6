"""The Train tab: data, presets and hyper-parameters (each as its config field declares it), live curves, Stop, the
test report and the checkpoint."""
from __future__ import annotations

import inspect
import re
import secrets
import time
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

import gradio as gr

from ..config import GROUPS, ConfigError, Setting, grouped, spec_of
from ..contract import OWNER, Choice, Number, Text, from_setting
from ..data.files import DataError, check_review_file
from ..data.sets import MORE_REVIEW_COUNT
from ..model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT
from ..model.network import ModelConfig
from ..model.scoring import SOURCE_COLUMNS, source_rows
from ..model.word_vectors import vector_size
from ..plots.training import confusion_figure, training_curves
from ..train.config import TrainConfig
from ..train.presets import PRESETS
from . import search, state
from .boundary import Upload, available_checkpoints, endpoint, status_line
from .jobs import RunInProgress, RunState

VECTOR_TYPES = (".txt", ".vec", ".gz", ".bz2", ".zip")
VECTORS_LABEL = ("Word vectors to start the embedding from (optional): GloVe .txt, fastText .vec or word2vec text; "
                 "plain, .gz, .bz2 or .zip")
# The hyper-parameters the Train tab shows, as their config fields declare them (sentiment/config.py): (dataclass,
# field, setting), group by group, each group's model settings first. This is also the order of the /train endpoint's
# inputs after (source, upload, vectors, limit, name, owner).
HYPER_PARAMETERS = grouped(ModelConfig, TrainConfig)
# The basic row, then one row under "Advanced" for each other group.
ROWS = tuple(sum(spec.group == group for *_, spec in HYPER_PARAMETERS) for group in GROUPS)


def _default(cls, name: str):
    return next(f for f in fields(cls) if f.name == name).default


def preset_values(name: str) -> list:
    preset = PRESETS[name]
    return [getattr(preset.model if cls is ModelConfig else preset.train, field) for cls, field, *_ in HYPER_PARAMETERS]


@endpoint(name=Choice("preset", choices=tuple(PRESETS)))
def apply_preset(name: str):
    """Every hyper-parameter of a preset, its row limit, and what the preset is.

    Args:
        name: a preset name: quick, lab, reference, gru or rnn.
    """
    return [*preset_values(name), PRESETS[name].train.limit, f"**{name}**: {PRESETS[name].description}"]


def configs(values: list, limit: int) -> tuple[TrainConfig, ModelConfig]:
    """The hyper-parameters' values (as their contract checked them) → the two config dataclasses."""
    chosen = {ModelConfig: {}, TrainConfig: {"limit": limit}}
    for (cls, name, _), value in zip(HYPER_PARAMETERS, values):
        chosen[cls][name] = value
    return TrainConfig(**chosen[TrainConfig]), ModelConfig(**chosen[ModelConfig])


def checkpoint_path(name: object) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name or "").strip()).strip("-.")[:60] or "my-model"
    path = CHECKPOINT_DIR / f"{stem}.pt"
    if path.exists() or path.name == DEFAULT_CHECKPOINT.name:  # never overwrite a saved checkpoint
        path = CHECKPOINT_DIR / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}.pt"
    return path


# The Train tab's data choices beside an upload: the value a client sends → the bundled data set it names.
BUNDLED_CHOICES = {"bundled": "sample", "bundled+more": "sample+more"}


def data_path(source: str, upload: Path | None) -> str | Path:
    """What to train on: a bundled data set's name, or the file uploaded for it, its format checked from its bytes
    (only then: a file left in the box while a bundled set is chosen is not read)."""
    if source in BUNDLED_CHOICES:
        return BUNDLED_CHOICES[source]
    if upload is None:
        raise DataError(TRAINING_FILE.when_empty())
    check_review_file(upload)
    return upload


# The inputs of /train before the hyper-parameters, which are each as its config field declares it.
TRAINING_FILE = Upload("training data", empty=None, reviews=False)  # read when the data is "upload"
TRAIN_INPUTS = dict(
    source=Choice("data", choices=(*BUNDLED_CHOICES, "upload")), upload=TRAINING_FILE,
    vectors=Upload("word vectors", empty=None, types=VECTOR_TYPES, reviews=False),
    limit=Number("row limit", 0, 1_000_000_000, integer=True, empty=0), name=Text("checkpoint name", empty="", most=200),
    owner=OWNER, **{name: from_setting(spec, _default(cls, name)) for cls, name, spec in HYPER_PARAMETERS})


def check_public_vectors(vectors: str, model_config: ModelConfig) -> None:
    """On a public demo the vectors' size, which sets the embedding size, stays within the embedding's cap."""
    cap = spec_of(ModelConfig, "embedding_dim").public
    size = vector_size(vectors) if vectors else 0
    if size > cap:
        raise DataError(f"{Path(vectors).name}: vectors of {size} numbers; a public demo's embedding has at most {cap}")


def train_view(run: RunState) -> tuple:
    """Status line, curves (or their placeholder), report, per-source table, confusion matrix and checkpoint file for
    a run state."""
    step = run.step
    if run.active and step:
        what = "Pre-training" if step.phase == "pretrain" else "Training"
        status = (f"**{what}** on {run.data_name} · step {step.step:,}/{step.total_steps:,} · epoch {step.epoch} · "
                  f"loss {step.train_loss:.3f} · {step.reviews_per_s:,.0f} reviews/s · ETA {step.eta_s:,.0f} s")
    else:
        status = f"**{run.status.capitalize()}** · {run.message}" if run.status != "idle" else run.message
    finished, points = run.finished, bool(run.history["step"] or run.history["pretrain_step"])
    report, confusion, checkpoint, sources = "", None, None, []
    if run.prepared and run.status != "preparing":
        report = f"**Read:** {run.prepared}\n\n"
    if finished and finished.report:
        r = finished.report
        report += (f"### Test report ({r.n:,} held-out reviews)\n\n| accuracy | F1 | precision | recall | loss |\n"
                  f"|---|---|---|---|---|\n| **{r.accuracy:.2%}** | {r.f1:.2%} | {r.precision:.2%} | {r.recall:.2%} | "
                  f"{r.loss:.4f} |\n\nSaved as `{finished.checkpoint.name}`: it is now in the Predict tab's list.")
        confusion = confusion_figure(r.confusion)
        checkpoint = str(finished.checkpoint)
        sources = [list(row) for row in source_rows(finished.by_source)]
    return (status, gr.Markdown(visible=not points), gr.Plot(training_curves(run.history), visible=points),
            report, gr.Dataframe(sources, visible=bool(sources)), gr.Plot(confusion, visible=confusion is not None),
            gr.File(checkpoint, visible=checkpoint is not None))


def follow_run():
    """The views of the current (or last) run, one per change, until it ends."""
    run = state.runner.snapshot()
    yield train_view(run)
    while run.active:
        newer = state.runner.wait_for_change(run.version, timeout=2.0)
        if newer.version != run.version:
            run = newer
            yield train_view(run)
            time.sleep(0.5)  # at most two updates a second: the chart stays smooth and the page light


def _start_training(source: str, upload, vectors, limit: float, name: str, owner: str, *values):
    """Start a training run with the chosen data and hyper-parameters, then stream its progress.

    Args:
        source: "bundled" (the bundled Amazon sample), "bundled+more" (the sample and the more reviews of
            sentiment/assets/more/) or "upload".
        upload: the uploaded file (as gradio_client's handle_file sends it), when source is "upload".
        vectors: an uploaded word-vectors file to start the embedding from (GloVe .txt, fastText .vec, word2vec
            text; plain, .gz, .bz2 or .zip), or null for none; its vectors' size sets the embedding size.
        limit: reviews to read, from each file in proportion to its size; 0 = every review.
        name: the checkpoint's file name (without .pt); an existing file is never overwritten.
        owner: this browser's id (only the browser that started a run may stop it); may be empty.
        values: the hyper-parameters, each by its config field's name, in the order of the Train tab.
    """
    if not state.SETTINGS.allow_training:
        raise ConfigError("Training is turned off on this public demo. Try the Predict and Playground tabs.")
    config, model_config = configs(list(values), limit)
    config = replace(config, vectors=str(vectors or ""))
    notes, limits = "", state.SETTINGS.run_limits
    if limits:
        config, model_config, notes = limits.apply(config, model_config)
        check_public_vectors(config.vectors, model_config)
    path = data_path(source, upload)
    with state.starting:
        if search.searching():
            raise RunInProgress("A search is running on this app; start the run when it ends (or stop it).")
        state.runner.start(config, model_config, path, checkpoint_path(name), owner=owner or None,
                           max_seconds=limits.max_seconds if limits else None)
    if notes:
        gr.Info(notes)
    yield from follow_run()


# An API client sees each hyper-parameter by its field's name (epochs, lr, …), not as param_6, param_7, ….
_fixed = list(inspect.signature(_start_training).parameters.values())[:-1]
_start_training.__signature__ = inspect.Signature(
    [*_fixed, *(inspect.Parameter(field, inspect.Parameter.POSITIONAL_OR_KEYWORD) for _, field, _ in HYPER_PARAMETERS)])
start_training = endpoint(**TRAIN_INPUTS)(_start_training)


@endpoint()
def watch_training():
    """Stream the current (or last) run until it ends; a page refresh re-attaches here."""
    yield from follow_run()


@endpoint(owner=OWNER)
def stop_training(owner: str) -> str:
    """Ask the running training run to stop after its current batch (only the browser that started it may)."""
    return state.runner.stop(owner or None)


def new_owner_token(token: str) -> str:
    """A random id kept in this browser's storage: it lets the browser that started a run stop it."""
    return token or secrets.token_hex(16)


@endpoint()
def server_restrictions() -> str:
    """What this server turns off or caps (training, uploads, the size and time of a run), and why; empty when
    nothing is."""
    return "\n\n".join(f"⚠ {sentence}" for sentence in state.SETTINGS.restrictions())


# Narrow enough for eight inputs in a row of a 1280-pixel page (Gradio's default of 160 wraps the eighth).
INPUT_WIDTH = 130


def hyper_parameter_input(cls, name: str, spec: Setting, value):
    if spec.choices:
        return gr.Dropdown(list(spec.choices), value=value, label=spec.label, info=spec.hint, min_width=INPUT_WIDTH)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=spec.label, info=spec.hint, min_width=INPUT_WIDTH)
    # No bounds or rounding here: /train's contract checks every value and says what is wrong with it.
    return gr.Number(value=value, label=spec.label, info=spec.hint, min_width=INPUT_WIDTH)


def create_tab(demo: gr.Blocks, checkpoint: gr.Dropdown) -> None:
    """Lays out the Train tab and wires its events."""
    owner = gr.BrowserState("", storage_key="lstm-sentiment-lab-owner")
    lab = PRESETS["lab"]
    restrictions = gr.Markdown(server_restrictions(), label="Restrictions", elem_id="train-restrictions")
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value="lab", label="Preset (every value stays editable)", scale=1)
        preset_note = gr.Markdown(f"**lab**: {lab.description}", label="Preset description", elem_id="preset-note")
    with gr.Row():
        source = gr.Radio([("Bundled Amazon sample (17,974 real reviews; quick)", "bundled"),
                           (f"Sample + {MORE_REVIEW_COUNT:,} more real reviews (the default model's data)", "bundled+more"),
                           ("Upload a file", "upload")], value="bundled", label="Data")
        # No file_types: Gradio would refuse other files before /train's contract does, with a traceback in the log.
        upload = gr.File(label=(f"fastText .txt/.bz2/.gz or CSV/TSV with a header (≤ {state.SETTINGS.max_upload_mb} MB)"
                                if state.SETTINGS.allow_uploads else "Uploads are off on this server (see above)"),
                         interactive=state.SETTINGS.allow_uploads, height=150, elem_id="upload")
        limit = gr.Number(value=lab.train.limit, label="Row limit",
                          info="reviews read (from each source in proportion to its size); 0 = every review")
        name = gr.Textbox(value="my-model", label="Checkpoint name")
    vectors = gr.File(label=VECTORS_LABEL if state.SETTINGS.allow_uploads else "Word vectors: uploads are off here",
                      interactive=state.SETTINGS.allow_uploads, height=120, elem_id="vectors")
    specs = [(*spec, value) for spec, value in zip(HYPER_PARAMETERS, preset_values("lab"))]
    rows = [specs[sum(ROWS[:i]) : sum(ROWS[: i + 1])] for i in range(len(ROWS))]
    with gr.Row(equal_height=True):
        made = [hyper_parameter_input(*spec) for spec in rows[0]]
    with gr.Accordion("Advanced: readout, pre-training, short examples, regularisation, schedule, vocabulary, device",
                      open=False, elem_id="advanced"):
        for row in rows[1:]:
            with gr.Row(equal_height=True):
                made += [hyper_parameter_input(*spec) for spec in row]
    with gr.Row():
        start = gr.Button("Start training", variant="primary", interactive=state.SETTINGS.allow_training)
        stop = gr.Button("Stop", variant="stop")
    status = gr.Markdown("No training run yet.", label="Status", elem_id="train-status")
    placeholder = gr.Markdown("*The loss and accuracy curves appear here with the first training step.*",
                              label="Curves placeholder")
    curves = gr.Plot(label="Loss and accuracy", visible=False, elem_id="train-curves")
    with gr.Row():
        with gr.Column():
            report = gr.Markdown(label="Test report", elem_id="train-report")
            by_source = gr.Dataframe(headers=list(SOURCE_COLUMNS), label="Test report by source", interactive=False,
                                     visible=False)
        confusion = gr.Plot(label="Confusion matrix", visible=False)
    download = gr.File(label="Checkpoint (download)", interactive=False, visible=False)

    outputs = [status, placeholder, curves, report, by_source, confusion, download]
    script = dict(api_visibility=state.run_visibility())
    chosen = preset.change(apply_preset, preset, [*made, limit, preset_note], api_name="preset", preprocess=False,
                           **script)
    started = start.click(start_training, [source, upload, vectors, limit, name, owner, *made], outputs,
                          api_name="train", concurrency_limit=None, preprocess=False, **script)
    started.then(available_checkpoints, checkpoint, checkpoint, api_visibility="private")
    stopped = stop.click(stop_training, owner, status, api_name="stop_training", **script)
    status_line(chosen, started, stopped, status=status, clear=False)  # the run's own line says the rest
    search.create_section(checkpoint, owner)
    demo.load(new_owner_token, owner, owner, api_visibility="private")
    demo.load(watch_training, None, outputs, api_name="watch_training", concurrency_limit=None, **script)
    demo.load(available_checkpoints, checkpoint, checkpoint, api_name="list_checkpoints")
    demo.load(server_restrictions, None, restrictions, api_name="restrictions")
