"""The Memory tab: why gated cells remember, on one review, on a synthetic memory task and by review length."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import gradio as gr

from ..config import ConfigError
from ..contract import REVIEW
from ..data.preprocessing import encode_review
from ..explain.review import explain
from ..memory.experiment import (
    CELL_TYPES,
    COMPARED,
    DISTANCES,
    FORGET_BIAS,
    MEMORY_CHECKPOINTS,
    MEMORY_EXAMPLE,
    STEPS,
    MemoryResult,
    MemorySettings,
    accuracy_by_length,
    gradient_drop,
    gradient_norms,
    memory_experiment,
)
from ..model.checkpoint import list_checkpoints
from ..plots.memory import (
    gradient_flow_figure,
    length_accuracy_figure,
    memory_figure,
    memory_heatmaps,
    trajectories_figure,
)
from .boundary import endpoint, serve, status_line
from .jobs import JobState
from .lab import Lab


@endpoint(review=REVIEW, names=COMPARED)
def compare_memory(lab: Lab, review: str, names: list[str]):
    """Gradient flow and the prediction after each token of one review for several checkpoints, and what the first
    LSTM among them (else the first model) keeps from token to token.

    Args:
        review: a review; the Memory tab's example opens with its verdict, then a long neutral middle.
        names: checkpoint file names, e.g. ["rnn.pt", "gru.pt", "lstm.pt"].
    """
    norms, trajectories, lines, first, far = {}, {}, [], None, 0
    for path in names:
        name, predictor = path.name, lab.checkpoints.predictor(path)
        tokens, ids = encode_review(review, predictor.vocab, predictor.max_len)
        if not ids:
            raise ConfigError("Nothing to read in this review: it has no words.")
        label = f"{name} ({predictor.model.config.cell.upper()})"
        norms[label] = gradient_norms(predictor.model, ids)
        explanation = explain(predictor, review)
        trajectories[label] = explanation.inspection.trace.trajectory
        if first is None or (predictor.model.config.cell == "lstm" and first[1].model.config.cell != "lstm"):
            first = (explanation, predictor)  # what the first LSTM keeps, else the first model
        far = min(50, len(ids) - 1)
        lines.append([label, round(explanation.probability, 3), f"{norms[label][-1]:.2e}",
                      f"{norms[label][-1 - far]:.2e}", f"{gradient_drop(norms[label], far):,.0f}×"])
    explanation, predictor = first
    trace = explanation.inspection.trace
    kept = memory_heatmaps(explanation.layer, trace.tokens, explanation.units)
    table = {"headers": ["checkpoint", "P(positive)", "gradient at the last token", f"at {far} tokens from the end",
                         "falls by"], "data": lines}
    return gradient_flow_figure(norms), trajectories_figure(trajectories, trace.tokens), kept, table


@endpoint(cells=CELL_TYPES, distances=DISTANCES, forget_bias=FORGET_BIAS, steps=STEPS)
def run_memory_experiment(lab: Lab, cells: list[str], distances: list, forget_bias: float, steps: float):
    """Train small RNN, GRU and LSTM models on a synthetic memory task (not reviews) for each distance, streaming
    accuracy against distance as each model finishes. One job at a time: refused while a training run or a search is
    going.

    Args:
        cells: cell types among "rnn", "gru", "lstm".
        distances: steps between the marker to remember and the end, each 1 to 100.
        forget_bias: the LSTM's forget-gate bias at the start, -10 to 10.
        steps: most training steps per model, 1 to 5,000.
    """
    settings = MemorySettings(forget_bias=forget_bias, steps=steps).validate()
    total = len(cells) * len(distances)

    def work(stop):
        for result in memory_experiment(cells, sorted(distances), settings):
            yield result
            if stop.is_set():
                return

    lab.jobs.start("memory", work, record_model, progress=ExperimentProgress(total=total),
                   message=f"0 of {total} models trained")
    yield from lab.jobs.follow("memory", memory_view)


@endpoint()
def watch_memory_experiment(lab: Lab):
    """Stream the current (or last) memory experiment until it ends; a page refresh re-attaches here."""
    yield from lab.jobs.follow("memory", memory_view)


@dataclass
class ExperimentProgress:
    total: int
    results: list[MemoryResult] = field(default_factory=list)


def record_model(job: JobState, result: MemoryResult) -> None:
    job.progress.results.append(result)
    job.status, job.message = "running", f"{len(job.progress.results)} of {job.progress.total} models trained"


def memory_view(job: JobState) -> tuple:
    """Accuracy against distance, the count so far and the table of the models trained."""
    if job.progress is None:  # none run since the server started
        return None, "", []
    results, total = job.progress.results, job.progress.total
    done = f"**{len(results)} of {total} models trained** ({time.time() - job.started:.0f} s)"
    if job.status == "failed":
        done = f"**Failed** · {job.message}"
    return (memory_figure(results), done,
            [[r.cell.upper(), r.distance, round(r.accuracy, 4), r.steps, round(r.seconds, 1)] for r in results])


@endpoint(names=COMPARED)
def compare_length_accuracy(lab: Lab, names: list[str]):
    """Test accuracy per review-length bucket for each chosen checkpoint, on its own held-out split.

    Args:
        names: checkpoint file names, e.g. ["default.pt"].
    """
    buckets = {}
    for path in names:
        predictor = lab.checkpoints.predictor(path)
        buckets[f"{path.name} ({predictor.model.config.cell.upper()})"] = accuracy_by_length(predictor)
    return length_accuracy_figure(buckets)


INTRO = (
    "### Why LSTMs remember\nA plain RNN rewrites its whole hidden state at every token, so what it read long ago "
    "fades: the gradient that would teach it to use an early word shrinks at every step back (it *vanishes*). An "
    "LSTM's cell state is only scaled by its forget gate and added to; a GRU's update gate does the same for its "
    "hidden state. Below, one review goes through an RNN, a GRU and the default LSTM, all trained on the bundled "
    "reviews.")
WHAT_TO_LOOK_FOR = (
    "**What to look for.** Left: on a log scale, how much the prediction depends on each token, against its distance "
    "from the end; a curve that drops steeply is a vanishing gradient. Right: the prediction after each token; a "
    "model that remembers keeps the opening verdict through the neutral middle.")


def create_tab(lab: Lab, demo: gr.Blocks) -> None:
    """Lays out the Memory tab and wires its events."""
    gr.Markdown(INTRO)
    checkpoints = list_checkpoints()
    shipped = [c for c in MEMORY_CHECKPOINTS if c in checkpoints]
    # The example's comparison, drawn once at start: the tab opens with its plots, and no visitor waits for them.
    drawn = compare_memory(lab, MEMORY_EXAMPLE, shipped) if shipped else (None, None, None, None)
    with gr.Row():
        review = gr.Textbox(MEMORY_EXAMPLE, label="Review (verdict first, then a long neutral middle)", lines=4,
                            max_length=REVIEW.most, scale=3)
        with gr.Column(scale=2):
            names = gr.Dropdown(checkpoints, value=shipped, multiselect=True, label="Checkpoints to compare",
                                allow_custom_value=True)
            compare = gr.Button("Compare", variant="primary")
            compare_status = gr.Markdown(label="Compare status", elem_id="compare-status")
    gr.Markdown(WHAT_TO_LOOK_FOR)
    with gr.Row():
        gradient = gr.Plot(drawn[0], label="Gradient flow")
        trajectories = gr.Plot(drawn[1], label="Prediction after each token")
    table = gr.Dataframe(drawn[3], label="Comparison", show_label=False, interactive=False, elem_id="memory-table")
    gr.Markdown("**What the LSTM keeps** (the first LSTM chosen, its last layer): a forget gate near 1 holds the cell "
                "state steady across the neutral middle. (With no LSTM chosen: a GRU's update gate and hidden state.)")
    kept = gr.Plot(drawn[2], label="Forget gate and cell state")
    gr.Markdown("### A memory task you can train in seconds\n**Synthetic data, not reviews.** Each sequence is random "
                "noise tokens with one marker (A or B) *distance* steps before the end; the label is the marker, so only "
                "memory can solve it (50% is chance). Try the LSTM's forget-gate bias at 1 and at 3.")
    with gr.Row():
        cells = gr.CheckboxGroup(list(CELL_TYPES.item.choices), value=["rnn", "gru", "lstm"], label="Cell types")
        distances = gr.CheckboxGroup([5, 10, 20, 50, 100], value=[5, 20, 50], label="Distances")
        forget_bias = gr.Number(1.0, label="LSTM forget-gate bias at start")
        steps = gr.Number(MemorySettings().steps, label="most training steps per model")
    run = gr.Button("Run the memory experiment", variant="primary")
    with gr.Row():
        memory_plot = gr.Plot(label="Accuracy against distance")
        with gr.Column():
            progress = gr.Markdown(label="Experiment progress")
            memory_table = gr.Dataframe(headers=["cell", "distance", "test accuracy", "steps", "seconds"],
                                        label="Experiment results", interactive=False)
    gr.Markdown("### Where each model loses track on real reviews\nTest accuracy on each checkpoint's own held-out "
                "reviews, grouped by review length.")
    lengths = gr.Button("Accuracy by review length")
    lengths_status = gr.Markdown(label="Accuracy by length status", elem_id="lengths-status")
    length_plot = gr.Plot(label="Accuracy by review length")

    raw = dict(preprocess=False)
    compared = compare.click(serve(lab, compare_memory), [review, names], [gradient, trajectories, kept, table],
                             api_name="compare_memory", **raw)
    experiment = run.click(serve(lab, run_memory_experiment), [cells, distances, forget_bias, steps],
                           [memory_plot, progress, memory_table], api_name="memory_experiment", concurrency_limit=None,
                           api_visibility=lab.job_visibility, **raw)
    demo.load(serve(lab, watch_memory_experiment), None, [memory_plot, progress, memory_table],
              api_visibility="private", concurrency_limit=None)
    measured = lengths.click(serve(lab, compare_length_accuracy), names, length_plot, api_name="accuracy_by_length",
                             concurrency_limit=1, **raw)
    status_line(lab, compared, status=compare_status)
    status_line(lab, measured, status=lengths_status)
    status_line(lab, experiment, status=progress, clear=False)  # the progress line keeps the experiment's last count
