"""Text → clean text → tokens → ids: the one encoding path shared by training, evaluation and prediction.

The rules follow the reference pipeline (lower-case, digits to 0, URL chunks to `<url>`, NLTK's word tokenizer,
a vocabulary of tokens seen at least twice with `_PAD`=0 and `_UNK`=1), with its bug fixed: unknown words map
to `_UNK`, never to `_PAD`. Two rules are ours: every apostrophe is the ASCII one, and negative contractions typed
without one get it back, so "don’t", "don`t" and "dont" all read as "do", "n't"; and text that was tokenized before
it reached us (`` great '' , do n't) reads as the same tokens as the text it came from.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nltk.tokenize import NLTKWordTokenizer

PAD, UNK, URL = "_PAD", "_UNK", "<url>"
PAD_ID, UNK_ID = 0, 1
# The words that deny what follows them, as our tokens spell them ("don't" is `do n't`).
NEGATIONS = frozenset({"not", "n't", "no", "never", "nothing", "none", "nobody", "without"})

# Bump whenever clean_text or tokenize changes what they return: cached token ids are keyed on it.
PREPROCESSING_VERSION = 3

_DIGIT = re.compile(r"\d")
_URL_HINT = re.compile(r"www\.|https?:|\.com")
# The reference's rule: the longest run of non-spaces that ends in a dot and three letters.
_URL_CHUNK = re.compile(r"\S+(?<=\.[a-z]{3})")
# Control characters other than whitespace would reach the vocabulary as invisible tokens.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Phones and word processors type ’ for an apostrophe, and some reviews use ` or ´: NLTK splits contractions on
# the ASCII one only, and would read "don’t" as "don", "’", "t".
_APOSTROPHE = re.compile(r"(?<=\w)[’‘`´ʼ](?=\w)")
# Negative contractions typed without their apostrophe ("dont", "cant") get it back, so that they read as the
# same "n't" as "don't" does: one well-trained negation instead of a dozen rare spellings of it.
_BARE_NT = re.compile(r"\b(do|does|did|is|was|are|were|could|would|should|have|has|had|ca|wo|ai)nt\b")
# Tokenized corpora (Penn Treebank style, as one of the bundled review sources is) close a quote with '' after a
# space, which NLTK reads as an opening quote: joined to the word before it, it closes, as a typed " does.
_SPACED_CLOSING_QUOTE = re.compile(r"(?<=\S) ''(?!')")


def clean_text(text: str) -> str:
    """Lower-case, digits to 0, one apostrophe for all (negative contractions typed without one get it back), a
    tokenized closing quote joined to its word and, in a review that mentions a web address, URL-like chunks to
    `<url>`."""
    text = _CONTROL.sub(" ", text.lower())
    text = _DIGIT.sub("0", text)
    text = _BARE_NT.sub(r"\1n't", _APOSTROPHE.sub("'", text))
    text = _SPACED_CLOSING_QUOTE.sub("''", text)
    if _URL_HINT.search(text):
        text = _URL_CHUNK.sub(URL, text)
    return text


class _Whitespace:
    r"""NLTK's rule `re.sub(r"\s+", " ", text)` as str.split and join, which is cheaper for the same result:
    `\s` in a str pattern and str.split() take the same code points for whitespace."""

    pattern = r"\s+"

    @staticmethod
    def sub(replacement: str, text: str) -> str:
        words = text.split()
        if not words:
            return replacement if text else ""
        return (replacement if text[0].isspace() else "") + replacement.join(words) + (
            replacement if text[-1].isspace() else "")


class _GatedWordTokenizer:
    """NLTK's `NLTKWordTokenizer`, with the same rules and the same output, for less work.

    NLTK runs ~35 regular expressions over every review through a timeout wrapper. Most of them can only
    match when a particular character is present (a quote, a colon, "cannot"...), so each rule is skipped
    when the text at that point holds none of its trigger strings. Rules we have no trigger for always run,
    so a newer NLTK with new rules stays correct. `tests/test_preprocessing.py` checks equality with NLTK
    on the bundled reviews.
    """

    _TRIGGERS: dict[str, tuple[str, ...]] = {
        "([«“‘„]|[`]+)": ("«", "“", "‘", "„", "`"),
        r"^\"": ('"',),
        r"(``)": ("``",),
        r"([ \(\[{<])(\"|\'{2})": ('"', "''"),
        r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)": ("'",),
        r"([^\.])(\.)([\]\)}>" "\"\'»”’ " r"]*+)\s*$": (".",),
        r"([:,])([^\d])": (":", ","),
        r"([:,])$": (":", ","),
        r"\.{2,}": ("..",),
        r"[;@#$%&]": tuple(";@#$%&"),
        r"[\u2012-\u2015]": ("\u2012", "\u2013", "\u2014", "\u2015"),
        r'([^\.])(\.)([\]\)}>"\']*)\s*$': (".",),
        r"[?!]": ("?", "!"),
        r"([^'])' ": ("' ",),
        r"[*]": ("*",),
        r"[\]\[\(\)\{\}\<\>]": tuple("[](){}<>"),
        r"--": ("--",),
        "([»”’])": ("»", "”", "’"),
        r"''": ("''",),
        r'"': ('"',),
        r"([^' ])('[sS]|'[mM]|'[dD]|') ": ("'",),
        r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ": ("'",),
    }

    def __init__(self) -> None:
        nltk = NLTKWordTokenizer
        head = [*nltk.STARTING_QUOTES, *nltk.PUNCTUATION, nltk.PARENS_BRACKETS, nltk.DOUBLE_DASHES]
        self._head = [self._rule(p.pattern, repl) for p, repl in head]
        self._tail = [self._rule(p.pattern, repl) for p, repl in nltk.ENDING_QUOTES]
        # Contractions are case-insensitive whole words ("cannot" → "can not"): the word itself is the trigger.
        contractions = [*nltk.CONTRACTIONS2, *nltk.CONTRACTIONS3]
        self._contractions = [
            (re.compile(p.pattern), re.sub(r"\(\?i\)|\(\?#X\)|\(\?=\\s\)|\\b|[()]", "", p.pattern))
            for p in contractions
        ]

    def _rule(self, pattern: str, replacement: str) -> tuple[re.Pattern | _Whitespace, str, tuple[str, ...] | None]:
        if (pattern, replacement) == (_Whitespace.pattern, " "):
            return _Whitespace(), replacement, None  # runs on every review: the cheaper equivalent
        return re.compile(pattern), replacement, self._TRIGGERS.get(pattern)

    @staticmethod
    def _apply(rules, text: str) -> str:
        for regex, replacement, triggers in rules:
            if triggers is None or any(t in text for t in triggers):
                text = regex.sub(replacement, text)
        return text

    def tokenize(self, text: str) -> list[str]:
        text = self._apply(self._head, text)
        text = self._apply(self._tail, " " + text + " ")
        lowered = text.lower()
        for regex, word in self._contractions:
            if word in lowered:
                text = regex.sub(r" \1 \2 ", text)
                lowered = text.lower()
        return text.split()


_word_tokenizer = _GatedWordTokenizer()


def _split_sentence_periods(tokens: list[str]) -> list[str]:
    # NLTK's word tokenizer only splits the text's final period; word_tokenize first splits sentences with
    # punkt, whose data cannot be downloaded here. Splitting "good." into "good" "." keeps one token per word;
    # tokens with an inner dot ("u.s.", "0.0") are left alone.
    # NLTK splits a contraction only before a space, so a word split off its period is read again: "didn't." reads
    # as "did", "n't", "." like "didn't" does anywhere else (and like already tokenized text does).
    out: list[str] = []
    for token in tokens:
        if len(token) > 1 and token[-1] == "." and "." not in token[:-1]:
            word = token[:-1]
            out += (*(_word_tokenizer.tokenize(word) if "'" in word else (word,)), ".")
        else:
            out.append(token)
    return out


def tokenize(clean: str) -> list[str]:
    """Split cleaned text into word tokens, keeping each `<url>` placeholder as one token."""
    if URL not in clean:
        return _split_sentence_periods(_word_tokenizer.tokenize(clean))
    tokens: list[str] = []
    for i, piece in enumerate(clean.split(URL)):
        if i:
            tokens.append(URL)
        tokens.extend(_word_tokenizer.tokenize(piece))
    return _split_sentence_periods(tokens)


def tokenize_review(text: str, max_tokens: int | None = None) -> list[str]:
    """clean_text + tokenize. With `max_tokens`, a very long text is cut before tokenizing (a 1 MB paste
    then costs no more than a normal review) while the first `max_tokens` tokens stay exactly the same."""
    clean = clean_text(text)
    if max_tokens is not None:
        budget = 32 * (max_tokens + 2)
        while len(clean) > budget:
            tokens = tokenize(clean[: clean.rfind(" ", 0, budget) + 1 or budget])
            # The last token or two can change where the text was cut; beyond that, the prefix is settled.
            if len(tokens) >= max_tokens + 2:
                return tokens[:max_tokens]
            budget *= 4
        return tokenize(clean)[:max_tokens]
    return tokenize(clean)


@dataclass
class Vocab:
    """Token ↔ id table. Index 0 is `_PAD`, 1 is `_UNK`, then tokens by falling frequency."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.itos[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with {PAD} and {UNK}")
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    @classmethod
    def from_counts(cls, counts: Counter, min_freq: int = 2, max_size: int | None = None) -> Vocab:
        """Tokens seen at least `min_freq` times, most frequent first (ties by token, so builds are stable)."""
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - 2)]
        return cls([PAD, UNK, *kept])

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 2, max_size: int | None = None) -> Vocab:
        counts: Counter = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, min_freq, max_size)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        stoi = self.stoi
        return [stoi.get(t, UNK_ID) for t in tokens]

    def to_dict(self) -> dict:
        return {"itos": list(self.itos)}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        return cls(list(data["itos"]))


def encode_review(text: str, vocab: Vocab, max_len: int) -> tuple[list[str], list[int]]:
    """The review's first `max_len` tokens and their ids: exactly what the model saw in training."""
    tokens = tokenize_review(text, max_tokens=max_len)
    return tokens, vocab.encode(tokens)
