"""The benchmark stays runnable: a tiny run of every stage prints a row per figure with its target verdict."""
import mmap
import re
import time

import numpy as np
import torch

from sentiment import bench
from sentiment.data import BUNDLED_SAMPLE
from sentiment.model import ModelConfig, SentimentNet


def test_every_stage_runs_and_prints_its_figures(capsys):
    bench.main(["all", "--reviews", "600", "--repeats", "1", "--train-steps", "1", "--embedding", "16",
                "--hidden", "16", "--layers", "1", "--batch", "32", "--baseline-c", "1", "--scale-reviews", "20000"])
    out = capsys.readouterr().out
    assert "torch" in out and "cores" in out and "settings:" in out
    for measure in ("reviews/s, first run (600 reviews)", "rerun (token cache)", "reviews/s, embedding 16",
                    "whole inspection p95 / forward median, both from the token ids",
                    "from the text (tokenizing too), p95", "test accuracy, 1,797 reviews",
                    "reviews/s, first run, 20,000 reviews", "rerun (memory-mapped cache of",
                    "peak RSS of the largest tokenizing worker", "peak anonymous RSS (its own memory)"):
        line = next(l for l in out.splitlines() if measure in l)
        assert re.search(r"\d", line.split(measure)[-1]), line  # a figure follows the measure
    assert re.search(r"peak RSS of this process: prep [\d,]+ MB, train [\d,]+ MB, inspect [\d,]+ MB, quality [\d,]+ MB, scale [\d,]+ MB", out)


def test_reference_preprocessing_pads_left_to_200_and_maps_unknown_words_to_pad():
    features, labels, word2idx = bench.reference_preprocess(BUNDLED_SAMPLE, 50)
    assert features.shape == (50, 200) and set(labels) == {0, 1}
    # left padding: the padding comes first, the review's last token sits at the last step (unless unknown)
    assert (features[:, 0] == 0).mean() > 0.9 and (features[:, -1] != 0).mean() > 0.9
    assert list(word2idx)[:2] == ["_PAD", "_UNK"] and 1 not in features  # its bug: unknown words become _PAD


def test_reference_step_loop_trace_matches_nn_lstm():
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=30, embedding_dim=6, hidden_size=5, num_layers=2)).eval()
    ids = torch.randint(2, 30, (9,))
    with torch.no_grad():
        states = bench.reference_step_loop_trace(model, ids)
        output, _ = model.rnn(model.embedding(ids[None]))
    assert np.allclose(states[-1][:, 5].numpy(), output[0].numpy(), atol=1e-5)


def test_accuracy_stage_trains_both_ways_on_the_same_split(capsys):
    bench.main(["accuracy", "--embedding", "8", "--hidden", "8", "--layers", "1", "--batch", "400", "--epochs", "1"])
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("accuracy") and "8/8×1" in l)
    ours, reference = (float(x) for x in re.findall(r"\s(\d+\.\d)\s", line)[:2])
    assert 30 <= ours <= 100 and 30 <= reference <= 100


def _resident(mb: int) -> mmap.mmap:
    """`mb` MB of fresh pages, resident until closed: malloc could hand back memory the process already holds."""
    pages = mmap.mmap(-1, mb * 2**20)
    np.frombuffer(pages, dtype=np.uint8)[:] = 1
    time.sleep(0.05)  # long enough for the sampling thread, where the kernel's high-water mark cannot be reset
    return pages


def test_peak_memory_sees_each_block_and_the_blocks_around_it():
    with bench.PeakMemory() as outer:
        start = outer.peak
        _resident(40).close()  # freed before the inner block starts
        with bench.PeakMemory(anon=True) as inner:
            _resident(20).close()
    assert outer.peak - start > 35  # the inner block's reset of the high-water mark did not hide the 40 MB
    assert 15 < inner.peak - start < 35
