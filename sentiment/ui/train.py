"""The Train tab: data, presets and hyper-parameters (each as its config field declares it), live curves, Stop, the
test report and the checkpoint."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import gradio as gr

from ..config import GROUPS, ConfigError, Setting, grouped, spec_of
from ..contract import OWNER, Choice, Number, Text, from_setting
from ..data.files import DataError, check_review_file
from ..data.sets import MORE_REVIEW_COUNT, data_files, data_name
from ..model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT
from ..model.network import ModelConfig
from ..model.scoring import SOURCE_COLUMNS, source_rows
from ..model.word_vectors import vector_size
from ..plots.training import confusion_figure, training_curves
from ..settings import Settings
from ..train.config import TrainConfig
from ..train.events import Evaluated, Finished, Preparing, Step
from ..train.loop import train
from ..train.presets import PRESETS
from . import search
from .boundary import Upload, available_checkpoints, endpoint, serve, status_line
from .jobs import JobRunner, JobState
from .lab import Lab

VECTOR_TYPES = (".txt", ".vec", ".gz", ".bz2", ".zip")
VECTORS_LABEL = ("Word vectors to start the embedding from (optional): GloVe .txt, fastText .vec or word2vec text; "
                 "plain, .gz, .bz2 or .zip")
# The hyper-parameters the Train tab shows, as their config fields declare them (sentiment/config.py): (dataclass,
# field, setting), group by group, each group's model settings first. This is also the order of the /train endpoint's
# inputs after (source, upload, vectors, limit, name, owner).
HYPER_PARAMETERS = tuple(grouped(ModelConfig, TrainConfig))


def _default(cls, name: str):
    return next(f for f in fields(cls) if f.name == name).default


def preset_values(name: str) -> list:
    preset = PRESETS[name]
    return [getattr(preset.model if cls is ModelConfig else preset.train, field) for cls, field, *_ in HYPER_PARAMETERS]


@endpoint(name=Choice("preset", choices=tuple(PRESETS)))
def apply_preset(name: str):
    """Every hyper-parameter of a preset, its row limit, what the preset is, and the bundled data it trains on.

    Args:
        name: a preset name: quick, lab, reference, gru or rnn.
    """
    preset = PRESETS[name]
    return [*preset_values(name), preset.train.limit, f"**{name}**: {preset.description}", DATA_CHOICES[preset.data]]


def configs(values: dict, limit: int) -> tuple[TrainConfig, ModelConfig]:
    """The hyper-parameters' values by field name (as their contract checked them) → the two config dataclasses."""
    part = {cls: {name: values[name] for kind, name, _ in HYPER_PARAMETERS if kind is cls}
            for cls in (TrainConfig, ModelConfig)}
    return TrainConfig(**part[TrainConfig], limit=limit), ModelConfig(**part[ModelConfig])


def checkpoint_path(name: object) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name or "").strip()).strip("-.")[:60] or "my-model"
    path = CHECKPOINT_DIR / f"{stem}.pt"
    if path.exists() or path.name == DEFAULT_CHECKPOINT.name:  # never overwrite a saved checkpoint
        path = CHECKPOINT_DIR / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}.pt"
    return path


# The Train tab's data choices beside an upload: the value a client sends → the bundled data set it names.
BUNDLED_CHOICES = MappingProxyType({"bundled": "sample", "bundled+more": "sample+more"})
DATA_CHOICES = MappingProxyType({data: choice for choice, data in BUNDLED_CHOICES.items()})
# The Train tab opens on the preset a first run should use: about a minute on two cores.
FIRST_PRESET = "quick"


def data_path(source: str, upload: Path | None, settings: Settings) -> str | Path:
    """What to train on: a bundled data set's name, or the file uploaded for it, its format checked from its bytes
    (only then: a file left in the box while a bundled set is chosen is not read)."""
    if source in BUNDLED_CHOICES:
        return BUNDLED_CHOICES[source]
    if upload is None:
        raise DataError(TRAINING_FILE.when_empty(settings))
    check_review_file(upload)
    return upload


# The inputs of /train before the hyper-parameters, which are each as its config field declares it.
TRAINING_FILE = Upload("training data", empty=None, reviews=False)  # read when the data is "upload"
TRAIN_INPUTS = MappingProxyType(dict(
    source=Choice("data", choices=(*BUNDLED_CHOICES, "upload")), upload=TRAINING_FILE,
    vectors=Upload("word vectors", empty=None, types=VECTOR_TYPES, reviews=False),
    limit=Number("row limit", 0, 1_000_000_000, integer=True, empty=0), name=Text("checkpoint name", empty="", most=200),
    owner=OWNER, **{name: from_setting(spec, _default(cls, name)) for cls, name, spec in HYPER_PARAMETERS}))


def check_public_vectors(vectors: str, model_config: ModelConfig) -> None:
    """On a public demo the vectors' size, which sets the embedding size, stays within the embedding's cap."""
    cap = spec_of(ModelConfig, "embedding_dim").public
    size = vector_size(vectors) if vectors else 0
    if size > cap:
        raise DataError(f"{Path(vectors).name}: vectors of {size} numbers; a public demo's embedding has at most {cap}")


@dataclass
class TrainingProgress:
    """What the Train tab shows of a run: its data, its last step, its curves, what it read, how it ended."""

    data_name: str
    step: Step | None = None
    history: dict[str, list] = field(default_factory=lambda: {
        "pretrain_step": [], "pretrain_loss": [], "step": [], "train_loss": [], "val_step": [], "val_loss": [],
        "val_accuracy": []})
    finished: Finished | None = None
    prepared: str = ""  # what the run read (reviews, classes, format and encoding, split, vocabulary, vectors)


def record_training(job: JobState, event) -> None:
    """A training event, written into the job's state."""
    run = job.progress
    if isinstance(event, Preparing):
        job.message = run.prepared = event.message
    elif isinstance(event, Step):
        prefix = "pretrain_" if event.phase == "pretrain" else ""
        run.history[f"{prefix}step"].append(event.step)
        run.history[f"{prefix or 'train_'}loss"].append(event.train_loss)
        job.status, run.step = "running", event
        job.message = f"step {event.step:,} of {event.total_steps:,}"
    elif isinstance(event, Evaluated):
        run.history["val_step"].append(event.step)
        run.history["val_loss"].append(event.val_loss)
        run.history["val_accuracy"].append(event.val_accuracy)
    elif isinstance(event, Finished):
        job.status = "stopped" if event.stopped else "finished"
        run.finished = event
        job.message = (f"Run {job.status} after {event.steps:,} steps in {event.seconds:.0f} s." if event.checkpoint
                       else f"Run {event.reason}.")


def start_run(jobs: JobRunner, config: TrainConfig, model_config: ModelConfig, data: str | Path, out: Path,
              owner: str | None = None, max_seconds: float | None = None) -> None:
    """Check the settings and the data's files, then train in the background as the lab's one job."""
    config.validate()
    model_config.validate(vocab_known=False)
    for path in data_files(data):
        if not path.is_file():
            raise DataError(f"{path.name}: no such file")
    jobs.start("training", lambda stop: train(config, model_config, data, out, stop), record_training,
               progress=TrainingProgress(data_name=data_name(data)), owner=owner, max_seconds=max_seconds,
               message="Preparing the data …")


def train_view(job: JobState) -> tuple:
    """Status line, curves (or their placeholder), report, per-source table, confusion matrix and checkpoint file for
    the latest training run."""
    run = job.progress or TrainingProgress(data_name="")
    step = run.step
    if job.active and step:
        what = "Pre-training" if step.phase == "pretrain" else "Training"
        status = (f"**{what}** on {run.data_name} · step {step.step:,}/{step.total_steps:,} · epoch {step.epoch} · "
                  f"loss {step.train_loss:.3f} · {step.reviews_per_s:,.0f} reviews/s · ETA {step.eta_s:,.0f} s")
    else:
        status = f"**{job.status.capitalize()}** · {job.message}" if job.status != "idle" else "No training run yet."
    finished, points = run.finished, bool(run.history["step"] or run.history["pretrain_step"])
    report, confusion, checkpoint, sources = "", None, None, []
    if run.prepared and job.status != "preparing":
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


@endpoint(**TRAIN_INPUTS)
def start_training(lab: Lab, source: str, upload, vectors, limit: float, name: str, owner: str, **hyper_parameters):
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
        hyper_parameters: each by its config field's name (epochs, lr, hidden_size, …), as the Train tab shows them.
    """
    if not lab.settings.allow_training:
        raise ConfigError("Training is turned off on this public demo. Try the Predict and Playground tabs.")
    config, model_config = configs(hyper_parameters, limit)
    config = replace(config, vectors=str(vectors or ""))
    notes, limits = "", lab.settings.run_limits
    if limits:
        config, model_config, notes = limits.apply(config, model_config)
        check_public_vectors(config.vectors, model_config)
    path = data_path(source, upload, lab.settings)
    start_run(lab.jobs, config, model_config, path, checkpoint_path(name), owner=owner or None,
              max_seconds=limits.max_seconds if limits else None)
    if notes:
        gr.Info(notes)
    yield from lab.jobs.follow("training", train_view)


@endpoint()
def watch_training(lab: Lab):
    """Stream the current (or last) run until it ends; a page refresh re-attaches here."""
    yield from lab.jobs.follow("training", train_view)


@endpoint(owner=OWNER)
def stop_training(lab: Lab, owner: str) -> str:
    """Ask the running training run to stop after its current batch (only the browser that started it may)."""
    return lab.jobs.stop(owner or None, "training")


def new_owner_token(token: str) -> str:
    """A random id kept in this browser's storage: it lets the browser that started a run stop it."""
    return token or secrets.token_hex(16)


@endpoint()
def server_restrictions(lab: Lab) -> str:
    """What this server turns off or caps (training, uploads, the size and time of a run), and why; empty when
    nothing is."""
    return "\n\n".join(f"⚠ {sentence}" for sentence in lab.settings.restrictions())


# Narrow enough for eight inputs in a row of a 1280-pixel page (Gradio's default of 160 wraps the eighth).
INPUT_WIDTH = 130


def hyper_parameter_input(cls, name: str, spec: Setting, value):
    if spec.choices:
        return gr.Dropdown(list(spec.choices), value=value, label=spec.label, info=spec.hint, min_width=INPUT_WIDTH)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=spec.label, info=spec.hint, min_width=INPUT_WIDTH)
    # No bounds or rounding here: /train's contract checks every value and says what is wrong with it.
    return gr.Number(value=value, label=spec.label, info=spec.hint, min_width=INPUT_WIDTH)


def create_tab(lab: Lab, demo: gr.Blocks, checkpoint: gr.Dropdown) -> None:
    """Lays out the Train tab and wires its events."""
    owner = gr.BrowserState("", storage_key="lstm-sentiment-lab-owner")
    recipe = PRESETS[FIRST_PRESET]
    restrictions = gr.Markdown(server_restrictions(lab), label="Restrictions", elem_id="train-restrictions")
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value=FIRST_PRESET, label="Preset (every value stays editable)", scale=1)
        preset_note = gr.Markdown(f"**{FIRST_PRESET}**: {recipe.description}", label="Preset description",
                                  elem_id="preset-note")
    with gr.Row():
        source = gr.Radio([("Bundled Amazon sample (17,974 real reviews; quick)", "bundled"),
                           (f"Sample + {MORE_REVIEW_COUNT:,} more real reviews (the default model's data)", "bundled+more"),
                           ("Upload a file", "upload")], value=DATA_CHOICES[recipe.data], label="Data")
        # No file_types: Gradio would refuse other files before /train's contract does, with a traceback in the log.
        upload = gr.File(label=(f"fastText .txt/.bz2/.gz or CSV/TSV with a header (≤ {lab.settings.max_upload_mb} MB)"
                                if lab.settings.allow_uploads else "Uploads are off on this server (see above)"),
                         interactive=lab.settings.allow_uploads, height=150, elem_id="upload")
        limit = gr.Number(value=recipe.train.limit, label="Row limit",
                          info="reviews read (from each source in proportion to its size); 0 = every review")
        name = gr.Textbox(value="my-model", label="Checkpoint name")
    vectors = gr.File(label=VECTORS_LABEL if lab.settings.allow_uploads else "Word vectors: uploads are off here",
                      interactive=lab.settings.allow_uploads, height=120, elem_id="vectors")
    specs = [(*spec, value) for spec, value in zip(HYPER_PARAMETERS, preset_values(FIRST_PRESET))]
    rows = [[spec for spec in specs if spec[2].group == group] for group in GROUPS]  # the basic row, then Advanced
    with gr.Row(equal_height=True):
        made = [hyper_parameter_input(*spec) for spec in rows[0]]
    with gr.Accordion("Advanced: readout, pre-training, short examples, regularisation, schedule, vocabulary, device",
                      open=False, elem_id="advanced"):
        for row in rows[1:]:
            with gr.Row(equal_height=True):
                made += [hyper_parameter_input(*spec) for spec in row]
    with gr.Row():
        start = gr.Button("Start training", variant="primary", interactive=lab.settings.allow_training)
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
    script = dict(api_visibility=lab.job_visibility)
    chosen = preset.change(serve(lab, apply_preset), preset, [*made, limit, preset_note, source], api_name="preset",
                           preprocess=False, **script)
    started = start.click(serve(lab, start_training), [source, upload, vectors, limit, name, owner, *made], outputs,
                          api_name="train", concurrency_limit=None, preprocess=False, **script)
    started.then(serve(lab, available_checkpoints), checkpoint, checkpoint, api_visibility="private")
    stopped = stop.click(serve(lab, stop_training), owner, status, api_name="stop_training", **script)
    status_line(lab, chosen, started, stopped, status=status, clear=False)  # the run's own line says the rest
    search.create_section(lab, demo, checkpoint, owner)
    demo.load(new_owner_token, owner, owner, api_visibility="private")
    demo.load(serve(lab, watch_training), None, outputs, api_name="watch_training", concurrency_limit=None, **script)
    demo.load(serve(lab, available_checkpoints), checkpoint, checkpoint, api_name="list_checkpoints")
    demo.load(serve(lab, server_restrictions), None, restrictions, api_name="restrictions")
