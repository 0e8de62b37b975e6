"""LSTM Sentiment Lab: train, take apart and question an LSTM sentiment classifier in the browser.

The entry point: the settings, the page and its tabs (each one module of `sentiment/ui/`, laying out its components
and wiring its events beside them), and the server. `python app.py --help`.
"""
from __future__ import annotations

import argparse
import logging
import os

import gradio as gr

from sentiment.config import ConfigError
from sentiment.settings import Settings
from sentiment.ui import memory, playground, predict, train, units
from sentiment.ui.lab import Lab


def build_demo(lab: Lab | None = None) -> gr.Blocks:
    """The page over `lab` (a Lab of default settings when none is given)."""
    lab = lab or Lab()
    public = (" **Public demo:** training runs are capped in size and time"
              + ("" if lab.settings.allow_uploads else ", uploads are off") + "." if lab.settings.public else "")
    with gr.Blocks(title="LSTM Sentiment Lab") as demo:
        gr.Markdown("# LSTM Sentiment Lab\nTrain an LSTM on real Amazon reviews, take the layer apart, and watch its "
                    f"gates decide. Running on **{lab.device}**.{public}", elem_id="header")
        with gr.Tabs():
            with gr.Tab("Predict", id="predict", elem_id="predict-tab"):
                checkpoint = predict.create_tab(lab)
            with gr.Tab("Train", id="train", elem_id="train-tab"):
                train.create_tab(lab, demo, checkpoint)
            with gr.Tab("Units", id="units", elem_id="units-tab"):
                units.create_tab(lab)
            with gr.Tab("Memory", id="memory", elem_id="memory-tab"):
                memory.create_tab(lab, demo)
            with gr.Tab("LSTM playground", id="playground", elem_id="playground-tab"):
                playground.create_tab(lab, demo)
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
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        auth = parse_auth(args.auth or os.environ.get("SENTIMENT_AUTH"))
        # With MCP the endpoints that start work stay off the API page, so that MCP clients are not offered them.
        lab = Lab(settings=Settings.from_env(share=args.share), list_jobs=not args.mcp)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    if args.share and not auth:
        print("--share serves this app at a public gradio.live address that anyone with the link can open for a week "
              "(predict, train within the public limits, the playground). Add --auth USER:PASSWORD to ask for a "
              "password.")
    build_demo(lab).queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth, mcp_server=args.mcp,
        max_file_size=upload_limit(lab.settings), theme=gr.themes.Soft())


if __name__ == "__main__":
    main()
