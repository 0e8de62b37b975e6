"""Helpers for driving the app's public API with gradio_client, shared by the API test modules."""
from __future__ import annotations

import base64
import json

import numpy as np

from sentiment.ui import train


def value(update):
    """A component's value, whether gradio_client returned the bare value or the component's update dict."""
    return update["value"] if isinstance(update, dict) and "value" in update else update


def output_labels(client, api_name: str) -> list[str]:
    """The labels of an endpoint's outputs, in order, as the app's config (which gradio_client reads) declares them."""
    labels = {c["id"]: c["props"].get("label") for c in client.config["components"]}
    wired = next(d for d in client.config["dependencies"] if d.get("api_name") == api_name.lstrip("/"))
    return [labels[i] for i in wired["outputs"]]


def named(client, api_name: str, result) -> dict:
    """An endpoint's answer keyed by each output's label: tests select what they check by name, not by position."""
    result = result if isinstance(result, (list, tuple)) else [result]
    labels = output_labels(client, api_name)
    assert None not in labels and len(set(labels)) == len(labels) == len(result), labels
    return {label: value(answer) for label, answer in zip(labels, result)}


def call(client, api_name: str, *args) -> dict:
    """Call an endpoint and name its outputs."""
    return named(client, api_name, client.predict(*args, api_name=api_name))


def rows(dataframe) -> list[list]:
    return value(dataframe)["data"]


def typed_array(spec: dict) -> np.ndarray:
    """A plotly.js typed array ({"dtype", "bdata", "shape"}) as numpy, decoded as the browser decodes it."""
    array = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"])
    return array.reshape([int(n) for n in spec["shape"].split(",")]) if "shape" in spec else array


def plot_traces(plot_update) -> list[dict]:
    """The traces of a gr.Plot's value, as the browser receives them."""
    return json.loads(value(plot_update)["plot"])["data"]


def positive_probability(label_update) -> float:
    confidences = {c["label"]: c["confidence"] for c in value(label_update)["confidences"]}
    return confidences["positive"]


TRAIN_INPUTS = ("source", "upload", "vectors", "limit", "name", "owner")  # then the hyper-parameters, in order


def train_input_index(name: str) -> int:
    """Position of an input of /train: one of TRAIN_INPUTS or a hyper-parameter's field name."""
    return [*TRAIN_INPUTS, *(field for _, field, *_ in train.HYPER_PARAMETERS)].index(name)


def train_args(limit: int, epochs: int, source: str = "bundled", upload=None, name: str = "api-test",
               vectors=None) -> list:
    """The /train endpoint's inputs: the quick preset with `limit` reviews and `epochs` epochs."""
    args = [source, upload, vectors, limit, name, "", *train.preset_values("quick")]
    args[train_input_index("epochs")] = epochs
    return args
