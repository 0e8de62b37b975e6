"""The Train tab's Search section: a small Optuna search (sentiment/search/) with its live plots and trials table,
Stop, and the best trial's checkpoint kept beside the others."""
from __future__ import annotations

import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import gradio as gr
import optuna

from ..config import ConfigError, declared, over_public_cap
from ..contract import OWNER, Number, from_setting
from ..model.checkpoint import CHECKPOINT_DIR
from ..search.study import PRUNERS, Search, SearchSettings, TrialDone
from ..settings import Settings
from .boundary import available_checkpoints, endpoint, serve, status_line
from .jobs import JobState, RunInProgress
from .lab import Lab

# The settings a person sets on the page (the others are the app's): each as SearchSettings declares it, but for the
# trials: each search here opens a study of its own, so at least one (the command line's 0 reports a shared study).
SEARCHED = ("trials", "timeout", "max_epochs", "limit", "pruner")
SPECS = MappingProxyType({name: spec for name, _, spec in declared(SearchSettings)})
INPUTS = MappingProxyType({**{name: from_setting(SPECS[name], getattr(SearchSettings, name)) for name in SEARCHED},
                           "trials": Number(SPECS["trials"].label, 1, SPECS["trials"].high, integer=True)})
HINTS = MappingProxyType({
    "trials": "training runs to try", "timeout": "seconds after which no trial starts; 0 = none",
    "max_epochs": "each trial trains 1 to this many", "limit": "reviews each trial reads; 0 = the preset's 4,000"})
COLUMNS = ("trial", "state", "validation loss", "validation accuracy", "epochs", "seconds", "lr", "hidden_size",
           "num_layers", "dropout", "batch_size", "cell")


def _row(done: TrialDone) -> list:
    p = done.params
    return [done.number, done.state, None if done.val_loss is None else round(done.val_loss, 4),
            None if done.val_accuracy is None else round(done.val_accuracy, 4), done.epochs, round(done.seconds, 1),
            float(f"{p['lr']:.3g}"), p["hidden_size"], p["num_layers"], round(p["dropout"], 3), p["batch_size"],
            p["cell"]]


def figures(study: optuna.Study) -> tuple:
    """Optuna's own plots of the study (plotly figures): the optimization history, the parameter importances (from
    two finished trials on) and the parallel coordinates."""
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        return None, None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        importances = (optuna.visualization.plot_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()) if len(finished) >= 2 else None)
    return (optuna.visualization.plot_optimization_history(study), importances,
            optuna.visualization.plot_parallel_coordinate(study))


def search_settings(settings: Settings, chosen: dict) -> tuple[SearchSettings, str]:
    """The inputs' values (checked by the contract) as SearchSettings, a public demo's caps applied, and a sentence
    on what the caps changed."""
    notes = ""
    if settings.public:
        capped = {name: SPECS[name].public for name in chosen if over_public_cap(chosen[name], SPECS[name])}
        chosen = {**chosen, **capped}
        if capped:
            notes = "Public demo limits applied: " + ", ".join(f"{SPECS[k].label} {v:,}" for k, v in capped.items())
    # Its own folder and study, even for two starts in the same second (the refused one removes only its own).
    study = f"app-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    return SearchSettings(study=study, preset="quick", **chosen), notes  # `Search` validates it


@dataclass
class SearchProgress:
    """What the Search section shows of a search: its trials as rows, the study's figures, the best trial, the kept
    checkpoint."""

    trials: int
    notes: str
    rows: list = field(default_factory=list)
    figures: tuple = (None, None, None)
    best: tuple[int, float] | None = None  # (trial, validation loss)
    kept: Path | None = None


@dataclass(frozen=True)
class SearchEnded:
    kept: Path | None


def search_work(search: Search):
    """The search as a job: each trial's result as it finishes, then the best trial's checkpoint kept beside the
    others (every trial's own checkpoint is removed)."""

    def work(stop):
        try:
            for done in search.run(stop):
                best = search.best_trial()
                yield done, figures(search.study), (best.number, best.value) if best else None
            yield SearchEnded(search.keep_best(CHECKPOINT_DIR / f"search-best-{datetime.now():%Y%m%d-%H%M%S}.pt"))
        finally:
            shutil.rmtree(search.workdir, ignore_errors=True)

    return work


def record_search(job: JobState, event) -> None:
    progress = job.progress
    if isinstance(event, SearchEnded):
        progress.kept = event.kept
        return
    done, progress.figures, progress.best = event
    progress.rows.append(_row(done))
    job.status, job.message = "running", f"{len(progress.rows)} of {progress.trials} trials done"


def search_view(job: JobState) -> tuple:
    """The status line, the trials and the study's figures."""
    progress = job.progress or SearchProgress(trials=0, notes="")
    said = f"{progress.notes}. " if progress.notes else ""
    best = progress.best
    if job.status == "idle":
        line = ""
    elif job.status == "failed":
        line = f"**Failed** · {job.message}"
    elif job.active:
        best_said = f" · best so far: trial {best[0]} (loss {best[1]:.4f})" if best else ""
        done = (f"{len(progress.rows)} of {progress.trials} trials done{best_said}" if progress.rows
                else f"trial 1 of {progress.trials} running …")
        line = f"**Searching** · {said}{done}"
    else:
        line = (f"**{job.status.capitalize()}** · {len(progress.rows)} trials; " + (
            f"best: trial {best[0]}, validation loss {best[1]:.4f}; kept as `{progress.kept.name}`, now in the Predict "
            "tab's list." if best and progress.kept else "no trial completed."))
    return line, progress.rows, *progress.figures


@endpoint(**INPUTS, owner=OWNER)
def run_search(lab: Lab, trials: float, timeout: float, max_epochs: float, limit: float, pruner: str, owner: str = ""):
    """Search the quick preset's settings with Optuna, streaming each trial's result and the study's plots. One job at
    a time: refused while a training run or the memory experiment is going.

    Args:
        trials: training runs to try, 1 to 10,000 (a public demo caps them).
        timeout: seconds after which no new trial starts; 0 = none.
        max_epochs: each trial trains 1 to this many epochs (at most 100).
        limit: reviews of the bundled sample each trial reads; 0 = the quick preset's.
        pruner: "median" or "halving" (successive halving): what stops a bad trial after an epoch.
        owner: this browser's id (only the browser that started a search may stop it); may be empty.
    """
    if not lab.settings.allow_training:
        raise ConfigError("Training is off on this server, and a search is training: see the notice above.")
    settings, notes = search_settings(lab.settings, dict(trials=trials, timeout=timeout, max_epochs=max_epochs,
                                                         limit=limit, pruner=pruner))
    search = Search(settings, CHECKPOINT_DIR / "search")
    try:
        lab.jobs.start("search", search_work(search), record_search, SearchProgress(trials=settings.trials, notes=notes),
                       owner=owner or None, message="trial 1 running")
    except RunInProgress:
        shutil.rmtree(search.workdir, ignore_errors=True)
        raise
    yield from lab.jobs.follow("search", search_view)


@endpoint()
def watch_search(lab: Lab):
    """Stream the current (or last) search until it ends; a page refresh re-attaches here."""
    yield from lab.jobs.follow("search", search_view)


@endpoint(owner=OWNER)
def stop_search(lab: Lab, owner: str = "") -> str:
    """Ask the running search to stop: the trial under way stops after its current batch, and no other starts.

    Args:
        owner: this browser's id; only the browser that started the search may stop it.
    """
    return lab.jobs.stop(owner or None, "search")


def create_section(lab: Lab, demo: gr.Blocks, checkpoint: gr.Dropdown, owner: gr.BrowserState) -> None:
    """Lays out the Search section (inside the Train tab) and wires its events."""
    public = (" A public demo caps a search at " + ", ".join(f"{SPECS[k].public:,} {SPECS[k].label}" for k in SEARCHED
                                                             if SPECS[k].public is not None)
              + "." if lab.settings.public else "")
    with gr.Accordion("Search: let Optuna choose the settings (learning rate, width, layers, dropout, batch, epochs, "
                      "cell)", open=False, elem_id="search"):
        gr.Markdown("Each trial trains the quick preset on the bundled sample with settings Optuna samples; after "
                    "every epoch its validation loss goes to a pruner, which stops a trial that is worse than the "
                    "others were at the same epoch. The best trial's checkpoint is kept. From the command line, and "
                    f"with many workers sharing one study: `python -m sentiment.search`.{public}")
        with gr.Row():
            trials, timeout, max_epochs, limit = (gr.Number(value, label=SPECS[name].label, info=HINTS[name])
                                                  for name, value in zip(SEARCHED, (6, 600, 2, 2000)))
            pruner = gr.Radio(list(PRUNERS), value="median", label=SPECS["pruner"].label)
        with gr.Row():
            start, stop = gr.Button("Start search", variant="primary"), gr.Button("Stop search", variant="stop")
        status = gr.Markdown(label="Search status", elem_id="search-status")
        table = gr.Dataframe(headers=list(COLUMNS), label="Trials", interactive=False, elem_id="search-trials")
        with gr.Row():
            history, importances = gr.Plot(label="Optimization history"), gr.Plot(label="Parameter importances")
        parallel = gr.Plot(label="Parallel coordinates")

    outputs = [status, table, history, importances, parallel]
    script = dict(api_visibility=lab.job_visibility, preprocess=False)
    searched = start.click(serve(lab, run_search), [trials, timeout, max_epochs, limit, pruner, owner], outputs,
                           api_name="search",
                           concurrency_limit=None, **script)
    searched.then(serve(lab, available_checkpoints), checkpoint, checkpoint, api_visibility="private")
    stopped = stop.click(serve(lab, stop_search), owner, status, api_name="stop_search", **script)
    demo.load(serve(lab, watch_search), None, outputs, api_visibility="private", concurrency_limit=None)
    status_line(lab, searched, stopped, status=status, clear=False)
