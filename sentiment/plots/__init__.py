"""Every figure, as plotly JSON, one module per view."""
