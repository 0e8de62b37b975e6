"""Review files in, labelled reviews out: streaming readers, the bundled sample and reproducible splits.

Readers yield one review at a time, so a 3.6M-line file never has to sit in memory as a whole. Lines that
cannot be used are skipped and counted in a `ReadReport`; a file with nothing usable is a `DataError`."""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from ..config import UserError

# Column names we recognise in CSV/TSV headers, compared lower-case.
_TEXT_COLUMNS = ("text", "review", "review_text", "reviewtext", "content", "body", "sentence", "comment")


_TITLE_COLUMNS = ("title", "summary", "headline", "review_title")


_LABEL_COLUMNS = ("label", "sentiment", "polarity", "class", "target", "rating", "stars")


_WORD_LABELS = {"neg": 0, "negative": 0, "pos": 1, "positive": 1}


_MAX_BAD_LINES_SHOWN = 5


_HEAD_BYTES = 64 * 1024  # read to tell the format and the encoding


# Bounds on what one file may make us hold or unpack. The longest review of the Amazon data is a few kB; a line or a
# field a thousand times that is not a review. Text compresses 3-5 times; a file that unpacks to 100 times its size,
# beyond the first 64 MB, is a compression bomb.
MAX_LINE_CHARS = 1_000_000


MAX_RATIO, RATIO_FROM_BYTES = 100, 64 * 2**20


csv.field_size_limit(MAX_LINE_CHARS)


class DataError(UserError, ValueError):
    """A data file that cannot be used, with a message meant for the person who chose it."""


_FORMAT_NAMES = {"fasttext": "fastText lines", "csv": "CSV", "tsv": "TSV"}


@dataclass
class ReadReport:
    """What reading a file found: how many reviews were kept and which lines were skipped."""

    source: str
    format: str = ""
    kept: int = 0
    skipped: int = 0
    first_bad_lines: list[int] = field(default_factory=list)
    positives: int = 0
    encoding: str = "utf-8"
    undecodable: int = 0  # skipped lines that are not text in the file's encoding

    def skip(self, line_number: int, undecodable: bool = False) -> None:
        self.skipped += 1
        self.undecodable += undecodable
        if len(self.first_bad_lines) < _MAX_BAD_LINES_SHOWN:
            self.first_bad_lines.append(line_number)

    def summary(self) -> str:
        text = f"{self.kept:,} reviews ({self.positives:,} positive, {self.kept - self.positives:,} negative)"
        if self.format:
            text += f", read as {_FORMAT_NAMES.get(self.format, self.format)} in {self.encoding} text"
        if self.skipped:
            lines = ", ".join(map(str, self.first_bad_lines))
            text += f"; skipped {self.skipped:,} unreadable lines (first: line {lines})"
        if self.undecodable:
            text += (f"; {self.undecodable:,} of them are not {self.encoding} text (a file saved as Latin-1 or "
                     "Windows-1252? save it as UTF-8)")
        return text


class _Bounded(io.RawIOBase):
    """A decompressing stream that refuses to unpack more than MAX_RATIO times the file's size."""

    def __init__(self, stream: io.BufferedIOBase, path: Path) -> None:
        self._stream, self._path, self._read = stream, path, 0
        self._limit = MAX_RATIO * max(1, path.stat().st_size)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        self._read += n
        if self._read > max(RATIO_FROM_BYTES, self._limit):
            raise DataError(f"{self._path.name}: unpacks to more than {MAX_RATIO} times its size: refused as a "
                            "compression bomb, not a data file")
        return n

    def close(self) -> None:
        self._stream.close()
        super().close()


# A file is judged by its first bytes, not its name: (test, format). bzip2's "BZh" is followed by a block size digit
# and the block magic, so that a text file starting "BZh" is not taken for one.
_MAGIC = (
    (lambda b: b.startswith(b"\x1f\x8b"), "gzip"),
    (lambda b: b[:3] == b"BZh" and b[3:4].isdigit() and b[4:10] == b"1AY&SY", "bzip2"),
    (lambda b: b.startswith(b"PK\x03\x04"), "zip"),
    (lambda b: b.startswith(b"\xfd7zXZ\x00"), "xz"),
    (lambda b: b.startswith(b"\x28\xb5\x2f\xfd"), "zstandard"),
    (lambda b: b.startswith(b"7z\xbc\xaf\x27\x1c"), "7-zip"),
)


_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".zip": "zip"}


# What reading a damaged or cut-short file raises, beside our own DataError: the decompressors' own errors.
READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile)


def compression(path: Path, readable: tuple[str, ...] = ("gzip", "bzip2")) -> str | None:
    """The compression the file's bytes show ("gzip", "bzip2", "zip"), None for a plain file; a name that promises
    another compression than the bytes hold, or a format outside `readable`, is a DataError that says so."""
    with open(path, "rb") as f:
        start = f.read(16)
    found = next((kind for test, kind in _MAGIC if test(start)), None)
    suffix = next((suffix for suffix in _SUFFIXES if path.name.lower().endswith(suffix)), None)
    if suffix and found != _SUFFIXES[suffix]:
        fix = (f"its bytes are {found}: rename it to match" if found else
               f"its bytes are not compressed at all: rename it without {suffix}, or compress it with {_SUFFIXES[suffix]}")
        raise DataError(f"{path.name}: this {suffix} file is not {_SUFFIXES[suffix]}-compressed; {fix}")
    if found and found not in readable:
        names = {"gzip": "gzip (.gz)", "bzip2": "bzip2 (.bz2)", "zip": "zip (.zip)"}
        raise DataError(f"{path.name}: a {found} file, which is not read here: unpack it, or compress it with "
                        f"{' or '.join(names[kind] for kind in readable)}")
    return found


def open_compressed(path: Path, readable: tuple[str, ...] = ("gzip", "bzip2")) -> io.BufferedIOBase:
    """The file's bytes, unpacked as its first bytes say (never beyond MAX_RATIO times its size); a zip must hold
    exactly one file."""
    kind = compression(path, readable)
    if kind == "zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DataError(f"{path.name}: the zip data is damaged or cut short ({e})") from None
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise DataError(f"{path.name}: the zip holds {len(members)} files; it should hold exactly one")
        return io.BufferedReader(_Bounded(archive.open(members[0]), path))
    if kind:
        return io.BufferedReader(_Bounded({"gzip": gzip.open, "bzip2": bz2.open}[kind](path, "rb"), path))
    return open(path, "rb")


def unreadable(path: Path, error: Exception) -> DataError:
    """A read that failed, as the person should hear it: our own refusal as it is, a damaged archive as such."""
    if isinstance(error, DataError):
        return error
    kind = compression(path, ("gzip", "bzip2", "zip"))
    if kind:
        return DataError(f"{path.name}: the {kind} data is damaged or cut short ({error})")
    return DataError(f"{path.name}: cannot read the file ({error})")


def _head(path: Path) -> bytes:
    try:
        with open_compressed(path) as f:
            return f.read(_HEAD_BYTES)
    except READ_ERRORS as e:
        raise unreadable(path, e) from None


def detect_encoding(head: bytes) -> str:
    """'utf-8' (a byte-order mark is skipped), or 'cp1252' (Windows-1252, which spreadsheets on Windows write; a
    superset of Latin-1's letters) when several lines of the file's start are not UTF-8 and none is UTF-8 beyond
    ASCII. A single bad line in a UTF-8 file is a bad line, skipped and counted."""
    failing = valid_non_ascii = 0
    for line in head.splitlines()[:-1] or head.splitlines():  # the last line may be cut mid-character
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            failing += 1
        else:
            valid_non_ascii += not line.isascii()
    return "cp1252" if failing >= 2 and not valid_non_ascii else "utf-8"


def _open_text(path: Path, report: ReadReport) -> Iterator[str]:
    """The file's lines, decoded in `report.encoding`, each at most MAX_LINE_CHARS long (a longer one ends the read
    with a DataError). Undecodable bytes become lone surrogates, so one bad line is skipped, not the whole file."""
    encoding = "utf-8-sig" if report.encoding == "utf-8" else report.encoding
    with io.TextIOWrapper(open_compressed(path), encoding=encoding, errors="surrogateescape", newline="") as f:
        number = 0
        while line := f.readline(MAX_LINE_CHARS + 1):
            number += 1
            if len(line) > MAX_LINE_CHARS:
                raise DataError(f"{path.name}: line {number:,} is longer than {MAX_LINE_CHARS:,} characters: "
                                "not a review file (one review a line)")
            yield line


def _is_clean(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def control_share(head: bytes) -> float:
    """The share of bytes that no text file holds (control characters other than tab, line ends and form feeds)."""
    return sum(head.count(bytes([c])) for c in _CONTROL_BYTES) / max(1, len(head))


_CONTROL_BYTES = [c for c in range(32) if chr(c) not in "\t\n\r\x0b\x0c\x1b"]


def detect_format(path: Path) -> str:
    """'fasttext', 'csv' or 'tsv', from the file name and, failing that, its first line; a file whose first bytes are
    not text is refused whatever its name."""
    head = _head(path)
    if not head.strip():
        raise DataError(f"{path.name}: the file is empty")
    if b"\x00" in head:
        raise DataError(f"{path.name}: not a review file: it looks binary (NUL bytes), not text")
    control = control_share(head)
    if control > 0.01:
        raise DataError(f"{path.name}: not a review file: it looks binary ({control:.0%} of its first "
                        "bytes are control characters), not text")
    name = path.name.lower()
    for suffix in (".bz2", ".gz"):
        name = name.removesuffix(suffix)
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".tsv"):
        return "tsv"
    first = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    if first.startswith("__label__"):
        return "fasttext"
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    raise DataError(
        f"{path.name}: not a review file we can read: expected fastText lines ('__label__1 text' / "
        "'__label__2 text') or a CSV/TSV file with a header naming a text and a label column"
    )


def _read_fasttext(path: Path, report: ReadReport) -> Iterator[tuple[str, int]]:
    for number, line in enumerate(_open_text(path, report), start=1):
        label, _, text = line.partition(" ")
        text = text.strip()
        if label not in ("__label__1", "__label__2") or not text or not _is_clean(text):
            report.skip(number, undecodable=bool(text) and not _is_clean(text))
            continue
        yield text, int(label == "__label__2")


def _pick_column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _label_scheme(values: set[str]) -> dict[str, int]:
    """Map raw label strings to 0/1. Numbers are read as 0/1 or 1/2 depending on which ones occur."""
    numbers = {v for v in values if v.isdigit()}  # other words are rows to skip, not a different scheme
    if numbers <= {"0", "1"}:
        return {**_WORD_LABELS, "0": 0, "1": 1}
    if numbers <= {"1", "2"}:
        return {**_WORD_LABELS, "1": 0, "2": 1}
    shown = ", ".join(sorted(numbers)[:5])
    raise DataError(f"labels must be 0/1, 1/2, neg/pos or negative/positive; found {shown}")


def _opens_a_quote_that_never_closes(lines: list[str], delimiter: str) -> bool:
    """Whether these raw lines of one record end inside a quoted field: the lenient reader takes such a record as one
    field running to the end of the file; the strict one says so."""
    try:
        list(csv.reader(lines, delimiter=delimiter, strict=True))
    except csv.Error as e:
        return "unexpected end of data" in str(e)
    return False


def _read_table(path: Path, delimiter: str, report: ReadReport) -> Iterator[tuple[str, int]]:
    def rows() -> Iterator[tuple[int, list[str]]]:
        record: list[str] = []  # the raw lines of the record being read

        def lines() -> Iterator[str]:
            for line in _open_text(path, report):
                record.append(line)
                yield line

        reader, start = csv.reader(lines(), delimiter=delimiter), 1
        try:
            for row in reader:
                if reader.line_num > start and _opens_a_quote_that_never_closes(record, delimiter):
                    raise DataError(f"{path.name}: line {start:,} opens a quote that never closes")
                record.clear()
                yield reader.line_num, row
                start = reader.line_num + 1
        except csv.Error as e:
            if "field larger than field limit" in str(e):
                raise DataError(f"{path.name}: line {start:,} opens a quote that never closes (the field after it runs "
                                f"past {csv.field_size_limit():,} characters)") from None
            raise DataError(f"{path.name}: malformed {report.format.upper()} near line {reader.line_num} ({e})") from None

    records = rows()
    try:
        _, header = next(records)
    except StopIteration:
        raise DataError(f"{path.name}: the file is empty") from None
    text_col, title_col = _pick_column(header, _TEXT_COLUMNS), _pick_column(header, _TITLE_COLUMNS)
    label_col = _pick_column(header, _LABEL_COLUMNS)
    if label_col is None:
        raise DataError(f"{path.name}: no label column (name one of: {', '.join(_LABEL_COLUMNS)})")
    if text_col is None and title_col is None:
        raise DataError(f"{path.name}: no text column (name one of: {', '.join(_TEXT_COLUMNS)})")
    records.close()

    # A first pass over the labels only (a small set of distinct strings) decides how to read numbers.
    seen = {row[label_col].strip().lower() for _, row in islice(rows(), 1, None) if len(row) > label_col}
    scheme = _label_scheme(seen - {""})

    for number, row in islice(rows(), 1, None):
        parts = [row[c].strip() for c in (title_col, text_col) if c is not None and c < len(row) and row[c].strip()]
        text = ": ".join(parts)
        label = scheme.get(row[label_col].strip().lower()) if len(row) > label_col else None
        if label is None or not text or not _is_clean(text):
            report.skip(number, undecodable=bool(text) and not _is_clean(text))
            continue
        yield text, label


def read_reviews(path: str | Path, report: ReadReport | None = None) -> Iterator[tuple[str, int]]:
    """Stream (text, label) pairs from a fastText (.txt/.bz2/.gz) or CSV/TSV file; label 1 is positive."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    report = report if report is not None else ReadReport(source=str(path))
    report.format = detect_format(path)
    report.encoding = detect_encoding(_head(path))
    try:
        if report.format == "fasttext":
            yield from _read_fasttext(path, report)
        else:
            yield from _read_table(path, "," if report.format == "csv" else "\t", report)
    except READ_ERRORS as e:
        raise unreadable(path, e) from None


def check_review_file(path: str | Path) -> str:
    """Fail fast, before a run starts, on a file that cannot be trained on (empty, binary, an unknown format, no
    label column, no usable line); reads only up to the first usable review. Returns the detected format."""
    report = ReadReport(source=str(path))
    if next(read_reviews(path, report), None) is None:
        raise DataError(f"{Path(path).name}: no usable review in the file ({report.skipped:,} lines skipped)")
    return report.format


def load_reviews(path: str | Path, limit: int | None = None) -> tuple[list[str], np.ndarray, ReadReport]:
    """Read up to `limit` reviews into memory and check that both classes are present."""
    report = ReadReport(source=str(path))
    texts: list[str] = []
    labels: list[int] = []
    for text, label in read_reviews(path, report):
        if limit is not None and len(texts) >= limit:
            break
        texts.append(text)
        labels.append(label)
    report.kept, report.positives = len(texts), sum(labels)
    require_both_classes(path, report)
    return texts, np.asarray(labels, dtype=np.int64), report


def require_reviews(path: str | Path, report: ReadReport) -> None:
    """DataError unless a finished read (`report.kept` set) kept a review."""
    if not report.kept:
        raise DataError(f"{Path(path).name}: no usable review in the file ({report.skipped:,} lines skipped)")


def require_both_classes(path: str | Path, report: ReadReport) -> None:
    """DataError unless a finished read (`report.kept`, `report.positives` set) kept reviews of both classes: training
    needs both (evaluating one class is a fair question: its accuracy is that class's recall)."""
    require_reviews(path, report)
    if report.positives in (0, report.kept):
        only = "positive" if report.positives else "negative"
        raise DataError(f"{Path(path).name}: every review is {only}; training needs both classes")
