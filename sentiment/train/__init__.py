"""Training: its settings, presets, the fit loop, pre-training, short examples, distributed steps."""
