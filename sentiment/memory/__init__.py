"""The memory experiment (a plain RNN, a GRU and an LSTM on a long-range task) and accuracy by length."""
