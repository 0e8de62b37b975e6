"""The Gradio layer: the Lab every tab shares (lab.py), its one job runner (jobs.py), the boundary every handler
goes through (boundary.py), and one module per tab, each with one `create_tab(lab)`."""
