"""The network, its checkpoints, the predictor that loads one, scoring, word vectors."""
