"""The Gradio layer: one module per tab, each with one `create_tab`, beside the boundary and the shared state."""
