"""English sentences from text that the installed packages already ship (nothing is downloaded).

For text students (sentence-embedding distillation) that need more prose than a toy list, without a
data set download: the documentation that Python and the project's required dependencies carry.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sysconfig
from pathlib import Path
from typing import Iterable, Iterator, Sequence

__all__ = ["SOURCES", "packaged_sentences", "source_sentences", "write_source_sentences"]

# Packages whose docstrings are read, in this order; all are hard dependencies of raykd (scipy comes
# with scikit-learn), so the corpus is the same wherever the same versions are installed.
_PACKAGES = ("sklearn", "numpy", "scipy", "torch")
SOURCES = ("python", *_PACKAGES)
"""Where sentences come from, in corpus order; also the classes of `source_sentences`."""
# Directories left out: test suites (code-like strings), and what is not the standard library.
_SKIP_DIRS = frozenset({"test", "tests", "testing", "idlelib", "lib2to3", "turtledemo", "site-packages", "dist-packages"})

_DOCSTRING = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
_RULE = re.compile(r"^\s*[-=~^*+#]{3,}\s*$", re.M)  # rst / numpydoc section underlines
_ROLE = re.compile(r":[a-z:]+:`~?([^`]*)`")  # :func:`name` -> name
_TICKS = re.compile(r"`+([^`]*)`+_?")  # ``code`` / `ref`_ -> code / ref
_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\"'][.!?])\s+(?=[A-Z])")
_CODE_LIKE = re.compile(r"[=<>{}\[\]\\|#@$^~*_]|--|\.\.\.|https?:|>>>|\w : \w")
_WORD = re.compile(r"^[(\"']?[A-Za-z][a-z]*(?:['-][a-z]+)*[)\"']?[,.;:!?]?[)\"']?$")
_MIN_WORD_FRACTION = 0.9  # of a sentence's tokens that must be plain words (prose, not code)


def _sentences(block: str) -> Iterator[str]:
    """Cut a docstring / rst / help text into candidate sentences, rst markup removed."""
    for paragraph in _PARAGRAPH.split(_RULE.sub("\n\n", block)):
        paragraph = _TICKS.sub(r"\1", _ROLE.sub(r"\1", paragraph))
        paragraph = _SPACE.sub(" ", paragraph).strip()
        if paragraph:
            yield from _SENTENCE_END.split(paragraph)


def _docstrings(root: Path) -> Iterator[str]:
    """Triple-quoted strings of every .py file under `root` (sorted, test suites skipped)."""
    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            continue
        source = path.read_text(encoding="utf-8", errors="ignore")
        for match in _DOCSTRING.finditer(source):
            yield match.group(1) if match.group(1) is not None else match.group(2)


def _package_dir(name: str) -> Path | None:
    """Where package `name` is installed, found without importing it (None when it is absent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _source_blocks(source: str) -> Iterator[str]:
    """The texts of one source: "python" (the language reference, then the standard library's
    docstrings), or a package of `_PACKAGES` (for sklearn its dataset descriptions first)."""
    if source == "python":
        from pydoc_data.topics import topics  # the stdlib's copy of the language reference (help("if") etc.)

        for key in sorted(topics):
            yield topics[key]
        yield from _docstrings(Path(sysconfig.get_paths()["stdlib"]))
        return
    root = _package_dir(source)
    if root is None:
        return
    if source == "sklearn":
        for path in sorted((root / "datasets" / "descr").glob("*.rst")):
            yield path.read_text(encoding="utf-8")
    yield from _docstrings(root)


def _blocks() -> Iterator[str]:
    for source in SOURCES:
        yield from _source_blocks(source)


def _is_prose(sentence: str, min_words: int, max_words: int) -> bool:
    words = sentence.split()
    if not min_words <= len(words) <= max_words:
        return False
    if not sentence[0].isupper() or sentence[-1] not in ".!?" or _CODE_LIKE.search(sentence):
        return False
    return sum(1 for w in words if _WORD.match(w)) >= _MIN_WORD_FRACTION * len(words)


@functools.lru_cache(maxsize=8)
def _cached(min_words: int, max_words: int) -> tuple[str, ...]:
    def candidates() -> Iterable[str]:
        for block in _blocks():
            for sentence in _sentences(block):
                if _is_prose(sentence, min_words, max_words):
                    yield sentence

    return tuple(dict.fromkeys(candidates()))  # dedup, first occurrence kept


def packaged_sentences(min_words: int = 6, max_words: int = 40) -> list[str]:
    """Distinct English sentences of `min_words`..`max_words` words, in a fixed order.

    Where the text comes from, in this order (nothing is downloaded; all of it ships with the
    interpreter or with raykd's required dependencies):

    1. the Python language reference bundled with the standard library (`pydoc_data.topics`);
    2. docstrings of the standard library's modules (test suites, idlelib and lib2to3 left out);
    3. scikit-learn's dataset descriptions (`sklearn/datasets/descr/*.rst`);
    4. docstrings of scikit-learn, NumPy, SciPy and PyTorch (their test suites left out).

    Text is cut into sentences at ". ", "! ", "? " before a capital letter, rst markup (roles,
    backticks, section underlines) is removed, and only prose is kept: starts with a capital, ends
    with . ! or ?, no code characters (= < > { } [ ] \\ | # @ $ ^ ~ * _), and at least 90 % of its
    tokens plain words. Duplicates are dropped (first occurrence kept). With Python 3.11 and the
    pinned dependencies this gives about 40k sentences in a few seconds; the list is the same on
    every call (cached per arguments), and only changes when the installed versions do.
    """
    if isinstance(min_words, bool) or isinstance(max_words, bool):
        raise TypeError("min_words and max_words must be integers")
    if not 1 <= int(min_words) <= int(max_words):
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words} and {max_words}")
    return list(_cached(int(min_words), int(max_words)))


def source_sentences(per_class: int, sources: Sequence[str] = SOURCES, min_words: int = 6, max_words: int = 40) -> list[tuple[str, str]]:
    """A text-classification task from the same packaged text: (sentence, source) pairs, the first
    `per_class` prose sentences of each source ("python": the language reference and standard
    library; or the package whose docstrings hold it). Telling the Python manual from SciPy's
    docstrings is a topic task a sentence encoder's embedding separates well, not a toy.

    Each source is read only as far as it needs to be, so a few hundred rows take a second. A
    sentence found in two sources is dropped from both (its label would be ambiguous); fewer than
    `per_class` sentences in a source is an error naming it.
    """
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or len(set(sources)) < 2:
        raise ValueError(f"sources must be at least two of {SOURCES}, got {list(sources)}")
    taken: dict[str, list[str]] = {}
    for source in sources:
        found: dict[str, None] = {}
        for block in _source_blocks(source):
            found.update((s, None) for s in _sentences(block) if _is_prose(s, min_words, max_words))
            if len(found) >= per_class:
                break
        taken[source] = list(found)[:per_class]
        if len(taken[source]) < per_class:
            raise ValueError(f"source {source!r} gives {len(taken[source])} sentences, fewer than per_class={per_class}")
    seen = [s for sentences in taken.values() for s in sentences]
    shared = {s for s in seen if seen.count(s) > 1}
    return [(s, source) for source, sentences in taken.items() for s in sentences if s not in shared]


def write_source_sentences(path: str | Path, per_class: int, sources: Sequence[str] = SOURCES) -> Path:
    """`source_sentences` as Parquet (`.parquet`) or JSON Lines (any other suffix): columns `text`
    and `label` (the source's name), no id column (ids are row positions)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    rows = source_sentences(per_class, sources)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [label for _, label in rows]}), path)
    else:
        path.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows))
    return path


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m raykd.data.text", description="Write a text-classification file: which installed package's docs a sentence comes from.")
    parser.add_argument("path", help="file to write: *.parquet, or *.jsonl for JSON Lines")
    parser.add_argument("--per-class", type=int, default=500, help="sentences per source (default 500)")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, from {','.join(SOURCES)}")
    args = parser.parse_args(argv)
    print(write_source_sentences(args.path, args.per_class, [s.strip() for s in args.sources.split(",") if s.strip()]))


if __name__ == "__main__":
    main()
