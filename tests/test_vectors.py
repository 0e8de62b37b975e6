"""Pre-trained word vectors: the readers of every text format, the refusals, the export and its exact round trip."""
from __future__ import annotations

import bz2
import gzip
import subprocess
import sys
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from conftest import SMALL_MODEL, SMALL_TRAIN

from sentiment.data.files import DataError
from sentiment.data.preprocessing import Vocab
from sentiment.model.checkpoint import load_checkpoint
from sentiment.model.word_vectors import export, read_vectors
from sentiment.train.events import Finished, Preparing
from sentiment.train.loop import train

VOCAB = Vocab(["_PAD", "_UNK", "great", "kettle", "n't", "do", "awful"])
ROWS = {"great": [0.5, -1.0, 2.0], "kettle": [1.5, 0.25, -0.125], "awful": [-2.0, 0.0, 1.0], "tea": [9.0, 9.0, 9.0]}


def _text(header: bool, rows: dict = ROWS, trailing: str = "") -> str:
    lines = [f"{word} {' '.join(map(str, vector))}{trailing}" for word, vector in rows.items()]
    return (f"{len(rows)} 3\n" if header else "") + "\n".join(lines) + "\n"


def _write(path, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    name = path.name
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".bz2"):
        data = bz2.compress(data)
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(name.removesuffix(".zip"), data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("name,header,trailing", [
    ("glove.6B.3d.txt", False, ""),  # GloVe: no header
    ("wiki.vec", True, " "),  # fastText: a header, and a space at each line's end
    ("word2vec.txt", True, ""),  # word2vec's text format
    ("glove.txt.gz", False, ""), ("wiki.vec.bz2", True, " "), ("glove.6B.3d.txt.zip", False, ""),
])
def test_each_text_format_plain_or_compressed_gives_our_tokens_their_vectors(tmp_path, name, header, trailing):
    vectors = read_vectors(_write(tmp_path / name, _text(header, trailing=trailing)), VOCAB)
    assert vectors.dim == 3 and vectors.read == 4
    assert [VOCAB.itos[i] for i in vectors.ids] == ["great", "kettle", "awful"]
    assert vectors.rows.tolist() == [ROWS["great"], ROWS["kettle"], ROWS["awful"]]
    assert vectors.matched == {"exact": 3, "lower-cased": 0, "by contraction": 0}


def test_a_cased_file_and_a_missing_contraction_half_are_matched_and_counted(tmp_path):
    rows = {"Great": [1.0, 1.0, 1.0], "KETTLE": [2.0, 2.0, 2.0], "kettle": [3.0, 3.0, 3.0], "not": [4.0, 4.0, 4.0]}
    vectors = read_vectors(_write(tmp_path / "cased.vec", _text(True, rows)), VOCAB)
    found = dict(zip((VOCAB.itos[i] for i in vectors.ids), vectors.rows.tolist()))
    assert found == {"great": [1.0] * 3, "kettle": [3.0] * 3, "n't": [4.0] * 3}  # the exact "kettle" wins
    assert vectors.matched == {"exact": 1, "lower-cased": 1, "by contraction": 1}
    assert "3 of the vocabulary's 6 tokens found (1 exact, 1 lower-cased, 1 by contraction)" in vectors.coverage(VOCAB)


@pytest.mark.parametrize("name,content,message", [
    ("empty.vec", "", "the file is empty"),
    ("ragged.txt", "great 1 2 3\nkettle 1 2\n", "line 2 has 2 numbers after its word; its first line has 3"),
    ("longer.txt", "great 1 2 3\nkettle 1 2 3 4\n", "line 2 has 4 numbers after its word; its first line has 3"),
    ("nan.vec", "2 3\ngreat 1 nan 3\nkettle 1 2 3\n", "line 2: the vector of 'great' holds NaN or an infinity"),
    ("inf.txt", "great 1 2 3\nkettle inf 2 3\n", "line 2: the vector of 'kettle' holds NaN"),
    ("count.vec", "5 3\ngreat 1 2 3\nkettle 1 2 3\n", "its header says 5 vectors; the file holds 2"),
    ("dim.vec", "2 4\ngreat 1 2 3\nkettle 1 2 3\n", "line 2 has 3 numbers after its word; its header says 4"),
    ("words.txt", "great 1 two 3\n", "line 1: 'two' is not a number"),
    ("huge.txt", "great " + "1 " * 5000 + "\n", "vectors of 5000 numbers; an embedding has 1 to 4096"),
    ("binary.bin", b"3 2\ngreat \x00\x00\x80?\x00\x00\x00@\n", "a binary file; word vectors are read from text"),
    ("latin.txt", "caf\xe9 1 2 3\n".encode("latin-1"), "line 1 is not UTF-8 text"),
    ("plain.txt.gz", None, "this .gz file is not gzip-compressed"),
    ("cut.vec.gz", gzip.compress(b"2 3\ngreat 1 2 3\nkettle 1 2 3\n" * 50)[:40], "the gzip data is damaged or cut short"),
    ("other.txt", "tea 1 2 3\ncoffee 1 2 3\n", "none of the vocabulary's 6 tokens is in the file"),
])
def test_a_file_that_is_not_word_vectors_is_refused_naming_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(b"great 1 2 3\n" if content is None else content.encode() if isinstance(content, str) else content)
    with pytest.raises(DataError, match=message):
        read_vectors(path, VOCAB)


def test_a_zip_of_two_files_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "great 1 2 3\n")
        archive.writestr("b.txt", "kettle 1 2 3\n")
    with pytest.raises(DataError, match="the zip holds 2 files; it should hold exactly one"):
        read_vectors(path, VOCAB)


def test_export_then_train_frozen_reproduces_the_rows_exactly(trained, tmp_path):
    path, *_ = trained
    exported = tmp_path / "small.vec"
    assert export(path, exported) == len(load_checkpoint(path).vocab) - 1  # every token but _PAD
    lines = exported.read_text().splitlines()
    assert lines[0] == f"{len(lines) - 1} {SMALL_MODEL.embedding_dim}"
    written = {line.split(" ")[0]: np.array(line.split(" ")[1:], dtype=np.float32) for line in lines[1:]}

    out = tmp_path / "frozen.pt"
    config = replace(SMALL_TRAIN, epochs=1, limit=2000, vectors=str(exported), freeze_embedding=True)
    events = list(train(config, replace(SMALL_MODEL, embedding_dim=16), out=out))
    said = " ".join(e.message for e in events if isinstance(e, Preparing))
    assert f"word vectors small.vec ({len(written):,} × 48)" in said and "of the training text's tokens" in said
    assert "embedding size 48, the vectors' (not 16)" in said and isinstance(events[-1], Finished)
    again = load_checkpoint(out)
    weights = again.state_dict["embedding.weight"].float().numpy()
    found = [(i, token) for i, token in enumerate(again.vocab.itos) if token in written]
    assert again.model_config.embedding_dim == 48 and len(found) > 0.9 * (len(again.vocab) - 1)
    assert all(np.array_equal(weights[i], written[token]) for i, token in found)  # bit for bit
    assert again.data["vectors"]["found"] == len(found)


def test_the_export_command_writes_or_says_why_not(trained, tmp_path):
    command = [sys.executable, "-m", "sentiment.vectors", "export"]
    done = subprocess.run([*command, str(trained[0]), str(tmp_path / "out.vec")], capture_output=True, text=True)
    assert done.returncode == 0 and "wrote" in done.stdout and (tmp_path / "out.vec").is_file()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    refused = subprocess.run([*command, str(bad), str(tmp_path / "x.vec")], capture_output=True, text=True)
    assert refused.returncode == 2 and "error:" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "x.vec").exists()


def test_a_missing_vectors_file_is_refused_before_any_data_is_read(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sentiment.train", "--preset", "quick", "--vectors",
                           str(tmp_path / "glove.txt"), "--out", str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert done.returncode == 2 and "glove.txt' is not a file" in done.stderr and "Traceback" not in done.stderr
