import random
import re
from collections import Counter

from nltk.tokenize import NLTKWordTokenizer

from sentiment.data.files import load_reviews
from sentiment.data.preprocessing import (
    PAD,
    UNK,
    UNK_ID,
    Vocab,
    _Whitespace,
    _word_tokenizer,
    clean_text,
    encode_review,
    tokenize,
    tokenize_review,
)
from sentiment.data.sets import BUNDLED_SAMPLE


def test_clean_lowercases_and_zeroes_digits():
    assert clean_text("Bought 2 for $19.99 in 2021!") == "bought 0 for $00.00 in 0000!"


def test_url_chunks_become_one_token_only_in_reviews_mentioning_a_web_address():
    tokens = tokenize_review("See www.example.com or shop.wwp.org for more.")
    assert tokens.count("<url>") == 2 and "example" not in " ".join(tokens)
    # Without www./http/.com the dot-three-letters rule does not fire (as in the reference).
    assert "<url>" not in tokenize_review("I named the file notes.txt before.")


def test_tokenizer_splits_punctuation_contractions_and_sentence_periods():
    assert tokenize(clean_text("I can't believe it. Great, really!")) == [
        "i", "ca", "n't", "believe", "it", ".", "great", ",", "really", "!",
    ]


def test_every_spelling_of_a_negative_contraction_reads_as_the_same_nt():
    # A phone's ’, a review's ` or ´, and the apostrophe left out all read as "don't" does.
    for text in ["I don't like it", "I don’t like it", "I don`t like it", "I don´t like it", "I dont like it"]:
        assert tokenize_review(text) == ["i", "do", "n't", "like", "it"], text
    assert tokenize_review("Cant complain, it wont break and isnt cheap") == [
        "ca", "n't", "complain", ",", "it", "wo", "n't", "break", "and", "is", "n't", "cheap",
    ]
    # Only whole words lose their missing apostrophe, and a quote mark that is not inside a word stays a quote.
    assert tokenize_review("Important: ‘dontt’ isn’t a word") == [
        "important", ":", "‘", "dontt", "’", "is", "n't", "a", "word",
    ]


def test_tokenized_text_reads_as_the_same_tokens_as_the_text_it_came_from():
    # One bundled source comes tokenized and lower-cased (Penn Treebank style): its quotes, contractions and periods
    # must reach the model as the raw reviews' do.
    pairs = [
        ("i do n't like it , it 's bad .", "I don't like it, it's bad."),
        ("he said `` great '' and left", 'He said "great" and left'),
        ("it ca n't be `` fixed . ''", 'It can\'t be "fixed."'),
        ("i did n't . it was n't mine .", "I didn't. It wasn't mine."),
    ]
    for tokenized, raw in pairs:
        assert tokenize_review(tokenized) == tokenize_review(raw), raw
    # And our own tokens, joined by spaces, read back as themselves (NLTK quirks aside: ",i", an apostrophe
    # before a closing quote).
    texts, _, _ = load_reviews(BUNDLED_SAMPLE, limit=3000)
    stable = [tokenize_review(" ".join(tokenize_review(t))) == tokenize_review(t) for t in texts]
    assert sum(stable) >= 0.998 * len(texts)


def test_gated_tokenizer_matches_nltk_on_real_reviews():
    texts, _, _ = load_reviews(BUNDLED_SAMPLE, limit=3000)
    nltk = NLTKWordTokenizer()
    odd = ["He said \"hi\" -- ``quoted'' 'tis cannot gonna (x) [y] {z} <w> a...b; c@d #e 50% & f* — g", "'twas d'ye more'n"]
    for text in [clean_text(t) for t in texts] + odd:
        assert _word_tokenizer.tokenize(text) == nltk.tokenize(text)


def test_whitespace_rule_is_the_regex_it_replaces():
    spaces = [c for c in map(chr, range(0x110000)) if re.fullmatch(r"\s", c)]
    assert spaces == [c for c in map(chr, range(0x110000)) if c.isspace()]  # what the rewrite relies on
    random.seed(0)
    alphabet = spaces + ["a", "b", "'", ".", "\u200b"]  # zero-width space: not whitespace to either
    for _ in range(20_000):
        text = "".join(random.choices(alphabet, k=random.randint(0, 10)))
        assert _Whitespace.sub(" ", text) == re.sub(r"\s+", " ", text), repr(text)


def test_vocab_keeps_tokens_seen_twice_most_frequent_first_and_round_trips():
    vocab = Vocab.build([["good", "bad", "good"], ["bad", "good", "once"]], min_freq=2)
    assert vocab.itos == [PAD, UNK, "good", "bad"]
    assert vocab.encode(["good", "never-seen", "once"]) == [2, UNK_ID, UNK_ID]
    assert Vocab.from_dict(vocab.to_dict()).itos == vocab.itos
    assert Vocab.from_counts(Counter({"a": 5, "b": 5, "c": 1}), min_freq=1, max_size=3).itos == [PAD, UNK, "a"]


def test_encode_review_truncates_like_training_even_for_huge_text():
    vocab = Vocab.build([["the", "the", "lid", "lid"]])
    text = "The lid broke after 3 days. " * 20_000  # ~560 kB
    tokens, ids = encode_review(text, vocab, max_len=200)
    assert len(ids) == 200 and tokens == tokenize(clean_text(text))[:200]
    assert ids[:2] == [vocab.stoi["the"], vocab.stoi["lid"]] and ids[2] == UNK_ID
