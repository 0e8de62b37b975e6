import bz2
import gzip
import re

import numpy as np
import pytest

from sentiment.data.files import (
    MAX_LINE_CHARS,
    DataError,
    ReadReport,
    load_reviews,
    read_reviews,
)
from sentiment.data.sets import (
    BUNDLED_DATA,
    BUNDLED_SAMPLE,
    MORE_REVIEW_COUNT,
    MORE_REVIEWS,
    TYPED_SENTENCES,
    split_by_source,
    split_indices,
    typed_sentences,
)

FASTTEXT_LINES = [
    b"__label__2 Great kettle: boils fast and looks nice.\n",
    b"__label__1 Broke in a week: the handle snapped.\n",
    b"no label here at all\n",
    b"__label__2    \n",
    b"__label__1 Bad bytes \xff\xfe in this line\n",
    b"__label__3 Unknown label value\n",
    b"__label__1 Too loud: I returned it.\n",
]


@pytest.mark.parametrize("opener,suffix", [(open, ".txt"), (bz2.open, ".txt.bz2"), (gzip.open, ".txt.gz")])
def test_fasttext_reader_skips_and_counts_bad_lines(tmp_path, opener, suffix):
    path = tmp_path / f"reviews{suffix}"
    with opener(path, "wb") as f:
        f.writelines(FASTTEXT_LINES)
    texts, labels, report = load_reviews(path)
    assert texts == ["Great kettle: boils fast and looks nice.", "Broke in a week: the handle snapped.", "Too loud: I returned it."]
    assert labels.tolist() == [1, 0, 0]
    assert report.format == "fasttext"
    assert (report.kept, report.skipped, report.first_bad_lines) == (3, 4, [3, 4, 5, 6])
    assert "skipped 4" in report.summary()


def test_csv_reader_streams_quoted_fields_and_skips_bad_rows(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('review,label\n"Loved it, truly",1\nAwful,0\n,1\nMeh,unsure\n"multi\nline review",1\n')
    report = ReadReport(source=str(path))
    rows = list(read_reviews(path, report))
    assert rows == [("Loved it, truly", 1), ("Awful", 0), ("multi\nline review", 1)]
    assert (report.skipped, report.first_bad_lines) == (2, [4, 5])


def test_csv_numeric_scheme_is_decided_by_the_values_present(tmp_path):
    one_two = tmp_path / "one_two.csv"
    one_two.write_text("title,content,polarity\nNice,works well,2\nBad,stopped working,1\n")
    texts, labels, _ = load_reviews(one_two)
    assert texts == ["Nice: works well", "Bad: stopped working"]
    assert labels.tolist() == [1, 0]
    zero_one = tmp_path / "zero_one.csv"
    zero_one.write_text("text,label\nworks well,1\nstopped working,0\n")
    assert load_reviews(zero_one)[1].tolist() == [1, 0]


def test_tsv_with_word_labels_and_bad_rows(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text("Sentiment\tText\npositive\tA joy to use\nNEG\tSlow and noisy\nmaybe\tNot sure\nneg\t\n")
    texts, labels, report = load_reviews(path)
    assert texts == ["A joy to use", "Slow and noisy"]
    assert labels.tolist() == [1, 0]
    assert report.skipped == 2 and report.first_bad_lines == [4, 5]


def test_unknown_numeric_labels_are_a_clear_error(tmp_path):
    path = tmp_path / "stars.csv"
    path.write_text("text,rating\ngood,5\nbad,1\nok,3\n")
    with pytest.raises(DataError, match="labels must be"):
        load_reviews(path)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("empty.txt", b"", "empty"),
        ("only_bad.txt", b"__label__2   \n__label__1\n", "no usable review"),
        ("empty.csv", b"", "empty"),
        ("nolabel.csv", b"text,author\ngood,me\n", "no label column"),
        ("notext.csv", b"label,author\n1,me\n", "no text column"),
        ("binary.bin", bytes(range(256)) * 40, "looks binary"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 8, "not a review file"),
        ("onlypos.txt", b"__label__2 good\n__label__2 great\n", "every review is positive"),
        ("garbage.txt", b"hello world\nsecond line\n", "not a review file"),
        ("broken.txt.gz", b"not really gzip", "this .gz file is not gzip-compressed; its bytes are not compressed"),
        ("bzip2.gz", bz2.compress(b"__label__2 good\n"), "this .gz file is not gzip-compressed; its bytes are bzip2"),
        ("cut.txt.gz", gzip.compress(b"__label__2 good\n" * 100)[:40], "the gzip data is damaged or cut short"),
        ("reviews.zip", b"PK\x03\x04" + bytes(60), "a zip file, which is not read here"),
        ("noise.csv", bytes((i * 37 + 11) % 255 + 1 for i in range(4000)), "looks binary .* control characters"),
        ("quote.csv", b"label,text\n1,fine\n0,bad\n0,\"never closed\n1,good\n0,worse\n", "line 4 opens a quote that never closes"),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value else "",
)
def test_unusable_files_are_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_reviews(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_reviews(tmp_path / "nope.txt")


def test_bundled_sample_reads_fully():
    texts, labels, report = load_reviews(BUNDLED_SAMPLE)
    assert len(texts) == 17_974 and report.skipped == 0
    assert int(labels.sum()) == 8_849


def test_split_is_reproducible_and_disjoint():
    a, b = split_indices(1000, seed=3), split_indices(1000, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))
    assert (len(a.train), len(a.val), len(a.test)) == (800, 100, 100)
    assert len(set(a.train) | set(a.val) | set(a.test)) == 1000
    assert not np.array_equal(split_indices(1000, seed=4).test, a.test)


@pytest.mark.parametrize("fmt", ["fasttext", "csv"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path, fmt, newline):
    """What spreadsheets write: UTF-8 with a byte-order mark, CRLF line ends."""
    lines = ([b"__label__2 Great kettle", b"__label__1 Broke in a week"] if fmt == "fasttext"
             else [b"text,label", b"Great kettle,1", b"Broke in a week,0"])
    path = tmp_path / ("reviews.txt" if fmt == "fasttext" else "reviews.csv")
    path.write_bytes(b"\xef\xbb\xbf" + newline.join(lines) + newline)
    texts, labels, report = load_reviews(path)
    assert texts == ["Great kettle", "Broke in a week"] and labels.tolist() == [1, 0] and report.skipped == 0


def test_a_windows_1252_file_is_read_as_such_and_a_stray_bad_line_is_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes('text,label\nCafé très bon,1\n"Nul, à éviter",0\nSehr schön,1\n'.encode("cp1252"))
    texts, labels, report = load_reviews(path)
    assert texts == ["Café très bon", "Nul, à éviter", "Sehr schön"] and labels.tolist() == [1, 0, 1]
    assert report.encoding == "cp1252" and "read as CSV in cp1252 text" in report.summary()
    # A UTF-8 file with one broken line keeps UTF-8, skips the line and says what it is.
    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes(b"__label__2 Tr\xc3\xa8s bien\n__label__1 bad \xff bytes\n__label__1 Nul\n")
    texts, _, report = load_reviews(mixed)
    assert texts == ["Très bien", "Nul"] and report.encoding == "utf-8" and report.undecodable == 1
    assert "1 of them are not utf-8 text" in report.summary()


def test_a_line_longer_than_any_review_ends_the_read(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"__label__2 fine\n__label__1 " + b"a" * (MAX_LINE_CHARS + 10) + b"\n")
    with pytest.raises(DataError, match="line 2 is longer than 1,000,000 characters"):
        load_reviews(path)


def test_the_typed_sentences_are_loadable_short_balanced_and_labelled():
    texts, labels, report = load_reviews(TYPED_SENTENCES)
    assert len(texts) >= 400 and report.skipped == 0 and report.format == "tsv"
    assert 0.45 <= labels.mean() <= 0.55
    assert all(len(text.split()) <= 20 for text in texts)  # what a person types, not a review
    assert len({t.lower() for t in texts}) == len(texts)
    # The kinds the file declares hold what they say, and the two with a negation are at least 100 each.
    same, labels_too, kinds = typed_sentences()
    assert same == texts and labels_too.tolist() == labels.tolist()
    negation = re.compile(r"\b(not|never|no|nothing|none|nobody|without)\b|n't", re.I)
    counts = {kind: kinds.count(kind) for kind in set(kinds)}
    assert counts["negated-praise"] >= 100 and counts["negated-complaint"] >= 100
    assert min(counts["contrast"], counts["comparison"], counts["plain"]) >= 30
    for text, label, kind in zip(texts, labels, kinds):
        if kind.startswith("negated-"):
            assert negation.search(text) and label == (kind == "negated-praise"), text
        if kind == "plain":
            assert not negation.search(text), text
        if kind == "contrast":
            assert re.search(r"\b(but|though|although|however)\b", text, re.I), text
    assert labels[texts.index("Not bad at all.")] == 1 and labels[texts.index("I can't recommend it.")] == 0


def test_the_more_reviews_ship_one_source_a_file_each_within_the_file_limit():
    assert BUNDLED_DATA["sample+more"] == (BUNDLED_SAMPLE, *MORE_REVIEWS) and len(MORE_REVIEWS) == 6
    total = 0
    for path in MORE_REVIEWS:
        assert path.stat().st_size <= 10_000_000, path.name
        texts, labels, report = load_reviews(path)
        assert report.skipped == 0 and 0 < labels.mean() < 1, path.name
        total += len(texts)
    assert total == MORE_REVIEW_COUNT


def test_each_source_is_split_on_its_own_so_the_samples_split_never_moves():
    sizes = [17_974, 2_093, 25_927]
    joined, alone = split_by_source(sizes), split_indices(sizes[0])
    for part in ("train", "val", "test"):
        rows = getattr(joined, part)
        assert np.array_equal(rows[rows < sizes[0]], getattr(alone, part))  # the sample's rows, as when read alone
        in_second = rows[(rows >= sizes[0]) & (rows < sizes[0] + sizes[1])] - sizes[0]
        assert np.array_equal(in_second, getattr(split_indices(sizes[1]), part))
    assert sorted(np.concatenate([joined.train, joined.val, joined.test])) == list(range(sum(sizes)))


def test_a_training_share_keeps_part_of_each_sources_training_rows_nested_and_holds_out_the_same_rows():
    sizes = [17_974, 2_093, 25_927]
    whole, half, tenth = (split_by_source(sizes, train_share=share) for share in (1.0, 0.5, 0.1))
    edges = np.cumsum([0, *sizes])
    for share, part in ((0.5, half), (0.1, tenth)):
        for start, end in zip(edges, edges[1:]):
            mine, all_of_it = part.train[(part.train >= start) & (part.train < end)], whole.train[
                (whole.train >= start) & (whole.train < end)]
            assert len(mine) == round(share * len(all_of_it))  # each source in its own share
            assert np.array_equal(mine, all_of_it[: len(mine)])  # the start of the source's shuffled order
        for held in ("val", "test"):
            assert np.array_equal(getattr(part, held), getattr(whole, held))
    assert set(tenth.train) < set(half.train) < set(whole.train)  # a smaller share lies within every larger one
    first = half.train[half.train < sizes[0]]
    assert np.mean(first < sizes[0] / 2) == pytest.approx(0.5, abs=0.05)  # shuffled: from all over the source
