"""Looking inside one review: gates and states, token effects, the playground's one layer."""
