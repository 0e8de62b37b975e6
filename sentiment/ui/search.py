"""The Train tab's Search section: a small Optuna search (sentiment/search.py) with its live plots and trials table,
Stop, and the best trial's checkpoint kept beside the others."""
from __future__ import annotations

import shutil
import threading
import warnings
from datetime import datetime

import gradio as gr
import optuna

from ..config import ConfigError, declared, over_public_cap
from ..contract import OWNER, Number, from_setting
from ..model.checkpoint import CHECKPOINT_DIR
from ..search.study import PRUNERS, Search, SearchSettings, TrialDone
from . import state
from .boundary import available_checkpoints, endpoint, status_line
from .jobs import RunInProgress

# The settings a person sets on the page (the others are the app's): each as SearchSettings declares it, but for the
# trials: each search here opens a study of its own, so at least one (the command line's 0 reports a shared study).
SEARCHED = ("trials", "timeout", "max_epochs", "limit", "pruner")
SPECS = {name: spec for name, _, spec in declared(SearchSettings)}
INPUTS = {**{name: from_setting(SPECS[name], getattr(SearchSettings, name)) for name in SEARCHED},
          "trials": Number(SPECS["trials"].label, 1, SPECS["trials"].high, integer=True)}
HINTS = {"trials": "training runs to try", "timeout": "seconds after which no trial starts; 0 = none",
         "max_epochs": "each trial trains 1 to this many", "limit": "reviews each trial reads; 0 = the preset's 4,000"}
COLUMNS = ["trial", "state", "validation loss", "validation accuracy", "epochs", "seconds", "lr", "hidden_size",
           "num_layers", "dropout", "batch_size", "cell"]
_running = threading.Lock()  # one search at a time in this app
_stop = threading.Event()
_owner = [""]  # the browser that started the running search: only it may stop it


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


def search_settings(chosen: dict) -> tuple[SearchSettings, str]:
    """The inputs' values (checked by the contract) as SearchSettings, a public demo's caps applied, and a sentence
    on what the caps changed."""
    notes = ""
    if state.SETTINGS.public:
        capped = {name: SPECS[name].public for name in chosen if over_public_cap(chosen[name], SPECS[name])}
        chosen = {**chosen, **capped}
        if capped:
            notes = "Public demo limits applied: " + ", ".join(f"{SPECS[k].label} {v:,}" for k, v in capped.items())
    study = f"app-{datetime.now():%Y%m%d-%H%M%S}"
    return SearchSettings(study=study, preset="quick", **chosen), notes  # `Search` validates it


@endpoint(**INPUTS, owner=OWNER)
def run_search(trials: float, timeout: float, max_epochs: float, limit: float, pruner: str, owner: str = ""):
    """Search the quick preset's settings with Optuna, streaming each trial's result and the study's plots.

    Args:
        trials: training runs to try, 1 to 10,000 (a public demo caps them).
        timeout: seconds after which no new trial starts; 0 = none.
        max_epochs: each trial trains 1 to this many epochs (at most 100).
        limit: reviews of the bundled sample each trial reads; 0 = the quick preset's.
        pruner: "median" or "halving" (successive halving): what stops a bad trial after an epoch.
        owner: this browser's id (only the browser that started a search may stop it); may be empty.
    """
    if not state.SETTINGS.allow_training:
        raise ConfigError("Training is off on this server, and a search is training: see the notice above.")
    settings, notes = search_settings(dict(trials=trials, timeout=timeout, max_epochs=max_epochs, limit=limit,
                                           pruner=pruner))
    with state.starting:
        if state.runner.snapshot().active or not _running.acquire(blocking=False):
            raise RunInProgress("A training run or a search is already in progress on this app; try again when it "
                                "ends.")
    search = None
    try:
        _stop.clear()
        _owner[0] = owner
        search, rows = Search(settings, CHECKPOINT_DIR / "search"), []
        said = f"{notes}. " if notes else ""
        yield f"**Searching** · {said}trial 1 of {settings.trials} running …", rows, None, None, None
        for done in search.run(_stop):
            rows.append(_row(done))
            best = search.best_trial()
            best_said = f" · best so far: trial {best.number} (loss {best.value:.4f})" if best else ""
            yield (f"**Searching** · {said}{len(rows)} of {settings.trials} trials done{best_said}", rows,
                   *figures(search.study))
        name = f"search-best-{datetime.now():%Y%m%d-%H%M%S}.pt"
        kept = search.keep_best(CHECKPOINT_DIR / name)
        best = search.best_trial()
        ended = "Stopped" if _stop.is_set() else "Finished"
        yield (f"**{ended}** · {len(rows)} trials; " + (f"best: trial {best.number}, validation loss {best.value:.4f}; "
               f"kept as `{kept.name}`, now in the Predict tab's list." if best and kept else "no trial completed."),
               rows, *figures(search.study))
    finally:
        if search is not None:  # every trial's own checkpoint: the best one was copied out
            shutil.rmtree(search.workdir, ignore_errors=True)
        _running.release()


def searching() -> bool:
    """Whether a search is running in this app (a training run then waits, as a search waits for one)."""
    return _running.locked()


@endpoint(owner=OWNER)
def stop_search(owner: str = "") -> str:
    """Ask the running search to stop: the trial under way stops after its current batch, and no other starts.

    Args:
        owner: this browser's id; only the browser that started the search may stop it.
    """
    if not _running.locked():
        return "No search is running."
    if _owner[0] and owner != _owner[0]:
        raise RunInProgress("This search was started in another browser; only that one can stop it.")
    _stop.set()
    return "**Stopping** the search after the current batch …"


def create_section(checkpoint: gr.Dropdown, owner: gr.BrowserState) -> None:
    """Lays out the Search section (inside the Train tab) and wires its events."""
    public = (" A public demo caps a search at " + ", ".join(f"{SPECS[k].public:,} {SPECS[k].label}" for k in SEARCHED
                                                             if SPECS[k].public is not None)
              + "." if state.SETTINGS.public else "")
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
        table = gr.Dataframe(headers=COLUMNS, label="Trials", interactive=False, elem_id="search-trials")
        with gr.Row():
            history, importances = gr.Plot(label="Optimization history"), gr.Plot(label="Parameter importances")
        parallel = gr.Plot(label="Parallel coordinates")

    outputs = [status, table, history, importances, parallel]
    script = dict(api_visibility=state.run_visibility(), preprocess=False)
    searched = start.click(run_search, [trials, timeout, max_epochs, limit, pruner, owner], outputs, api_name="search",
                           concurrency_limit=None, **script)
    searched.then(available_checkpoints, checkpoint, checkpoint, api_visibility="private")
    stopped = stop.click(stop_search, owner, status, api_name="stop_search", **script)
    status_line(searched, stopped, status=status, clear=False)
