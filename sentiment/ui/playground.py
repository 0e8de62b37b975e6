"""The LSTM playground: a real `nn.LSTM` (`nn.GRU`, `nn.RNN`) of any sane size, every shape and weight."""
from __future__ import annotations

from types import MappingProxyType

import gradio as gr

from ..contract import Choice, Number, Switch
from ..explain.playground import SIZES, describe_cell, unrolled_diagram
from ..model.network import CELLS
from .boundary import endpoint, serve, status_line
from .lab import Lab

# Each size as the page labels it.
LABELS = MappingProxyType({"input_size": "input size", "hidden_size": "hidden size", "num_layers": "layers",
                          "batch_size": "batch",
          "seq_len": "sequence length"})


@endpoint(cell=Choice("cell type", choices=tuple(CELLS)),
          **{name: Number(LABELS[name], 1, most, integer=True) for name, most in SIZES.items()},
          batch_first=Switch("batch_first"), bidirectional=Switch("bidirectional"))
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
    shapes = describe_cell(cell, input_size, hidden_size, num_layers, batch_size, seq_len, batch_first, bidirectional)
    return (shapes.code, shapes.shapes, f"{shapes.many_to_one}\n\n{shapes.many_to_many}", shapes.parameters,
            f"**{shapes.total_parameters:,} parameters.** {shapes.stacking}",
            unrolled_diagram(cell, num_layers, seq_len, bidirectional))


@endpoint(**playground.contract)
def accept_sizes(cell: str, input_size: float, hidden_size: float, num_layers: float, batch_size: float,
                 seq_len: float, batch_first: bool, bidirectional: bool) -> None:
    """The playground's fields as its contract checks them, before anything is built."""


def create_tab(lab: Lab, demo: gr.Blocks) -> None:
    """Lays out the playground tab and wires its events."""
    gr.Markdown("Pick a cell type and the sizes; the module is built and run for real, and every shape below is "
                "what PyTorch returned.")
    with gr.Row():
        cell = gr.Radio([("LSTM", "lstm"), ("GRU", "gru"), ("RNN", "rnn")], value="lstm", label="cell type")
        input_size, hidden_size, num_layers, batch_size, seq_len = (
            gr.Number(value, label=LABELS[name]) for name, value in zip(SIZES, (5, 10, 1, 1, 3)))
        batch_first, bidirectional = gr.Checkbox(True, label="batch_first"), gr.Checkbox(False, label="bidirectional")
    show = gr.Button("Show shapes", variant="primary")
    shown_status = gr.Markdown(label="Playground status", elem_id="playground-status")
    with gr.Row():
        code, diagram = gr.Code(language="python", label="Equivalent PyTorch"), gr.Plot(label="Unrolled")
    shapes = gr.Dataframe(headers=["tensor", "shape", "meaning"], label="Shapes", interactive=False, elem_id="shape-table")
    slices = gr.Markdown(label="Many-to-one and many-to-many")
    parameters = gr.Dataframe(headers=["weight", "shape", "count"], label="Parameters", interactive=False)
    total = gr.Markdown(label="Parameter total")

    inputs = [cell, input_size, hidden_size, num_layers, batch_size, seq_len, batch_first, bidirectional]
    outputs = [code, shapes, slices, parameters, total, diagram]
    shown_ = serve(lab, playground)
    shown = show.click(shown_, inputs, outputs, api_name="playground", preprocess=False)
    # The shapes follow every field as it changes; a value the contract refuses is said in the status line and leaves
    # the last shapes in place (the check has no outputs to mark).
    changed = gr.on([field.change for field in inputs], serve(lab, accept_sizes), inputs, None,
                    trigger_mode="always_last", api_visibility="private", preprocess=False).success(
        shown_, inputs, outputs, api_visibility="private", preprocess=False)
    status_line(lab, shown, changed, status=shown_status)
    demo.load(shown_, inputs, outputs, api_visibility="private", preprocess=False)
