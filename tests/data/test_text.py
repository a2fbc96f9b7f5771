"""packaged_sentences: enough distinct English sentences from installed packages, deterministic, bounded."""

from __future__ import annotations

import re
import time

import pytest

from raykd.data import text
from raykd.data.text import packaged_sentences


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    text._cached.cache_clear()
    start = time.perf_counter()
    found = packaged_sentences()
    assert time.perf_counter() - start < 30  # ~5 s here; generous for a loaded CI box
    return found


def test_enough_distinct_sentences(sentences):
    assert 10_000 <= len(sentences) <= 100_000
    assert len(set(sentences)) == len(sentences)


def test_sentences_are_bounded_prose(sentences):
    for s in sentences:
        words = s.split()
        assert 6 <= len(words) <= 40, s
        assert s[0].isupper() and s[-1] in ".!?", s
        assert re.search(r"[a-z]", s), s
        assert s == s.strip() and "\n" not in s and "``" not in s and ">>>" not in s, s


def test_sources_are_represented(sentences):
    joined = "\n".join(sentences)
    # the language reference (pydoc_data), stdlib docstrings, scikit-learn's dataset descriptions, torch docstrings
    for probe in ("statement", "iterator", "dataset", "tensor"):
        assert probe in joined


def test_deterministic_and_a_fresh_list_each_call(sentences):
    again = packaged_sentences()
    assert again == sentences and again is not sentences
    again.clear()  # the caller's copy; the cache is untouched
    assert packaged_sentences() == sentences
    text._cached.cache_clear()
    assert packaged_sentences() == sentences  # rebuilt from scratch: same list, same order


def test_word_bounds(sentences):
    short = packaged_sentences(min_words=6, max_words=12)
    assert short and all(6 <= len(s.split()) <= 12 for s in short)
    assert set(short) <= set(sentences)
    assert len(packaged_sentences(min_words=3, max_words=60)) > len(sentences)


@pytest.mark.parametrize("bounds", [(0, 10), (10, 5), (True, 10)])
def test_bad_bounds(bounds):
    with pytest.raises((ValueError, TypeError)):
        packaged_sentences(*bounds)
