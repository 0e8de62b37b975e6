"""`python -m sentiment.bench`: our pipeline against the reference tutorial's, side by side in one process, and the
latency budgets of the app. Not imported by the product: the reference pipeline and the measuring tools live here."""
