"""Corpora: read raw data (chinese-poetry JSON, tutorial name lists, plain text), clean it, split it.

Every corpus becomes a list of :class:`Sample` (text, category, split). What a named corpus is
(its raw files, how it is read and split, its script, what its models serve) is its entry in
``CORPORA``: adding a corpus is adding an entry (and its download manifest), nothing else.
Preparing the Tang corpus takes a few seconds (OpenCC over ~3M characters), so the result is cached
as JSONL under the user cache, keyed by a fingerprint of the raw files: a changed file means a new
fingerprint.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from poetgen import paths
from poetgen.errors import PoetgenError, unknown
from poetgen.verse import FORMS, LINE_END, OTHER, clean_marks, poem_form

SCRIPTS = ("simplified", "traditional")
SPLITS = ("train", "val", "test")
PREPARED_VERSION = 1  # bump when cleaning rules change so stale caches are rebuilt
CACHE_LAYOUT = 3  # bump when a Sample gains a field or a label (2: poets, 3: tunes); texts and splits stay the same

# ---------------------------------------------------------------------------------------------
# Samples and corpora


@dataclass(frozen=True)
class Sample:
    text: str
    category: str | None = None  # poem form for poems, language for names
    split: str = "train"
    author: str | None = None  # the poet, for poems


@dataclass
class Corpus:
    name: str
    samples: list[Sample]
    fingerprint: str
    script: str | None = None

    def split(self, which: str) -> list[Sample]:
        return [s for s in self.samples if s.split == which]

    @property
    def categories(self) -> list[str]:
        return sorted({s.category for s in self.samples if s.category is not None})


@dataclass(frozen=True)
class CorpusSpec:
    """What a named corpus is: one entry of ``CORPORA``."""

    files: str  # glob, under the data folder, of the raw files it is read from
    prepare: Callable[[CorpusSpec, list[Path], str], list[Sample]]  # (spec, raw files, script) → samples, split
    script: str | None  # the script of its raw files; None: not Chinese text, there is no script to choose
    serves: str  # "poems" or "names": what its models write, and so the commands that take them
    split: tuple[float, float]  # the shares of the validation and test splits (``prepare`` says of what)
    category: Callable[[str, dict], str] | None = None  # poems: a poem's category from its text and record
    forms: tuple[str, ...] = ()  # poems: the forms a model is trained on unless --form says otherwise
    styles: int = 0  # poems: the poets a model is conditioned on by default (the training preset)


def load_corpus(
    name: str,
    data_dir: Path | str | None = None,
    *,
    script: str = "simplified",
    forms: list[str] | None = None,
) -> Corpus:
    """Load a corpus of ``CORPORA`` (tang, songci, names) or a UTF-8 text file (one sample per line).

    ``forms`` keeps only poems of those forms (五绝 七绝 五律 七律 other).
    """
    if script not in SCRIPTS:
        raise unknown("script", script, list(SCRIPTS))
    if not name.strip():
        raise PoetgenError(f"give a corpus: {', '.join(CORPORA)}, or a path to a text file")
    if name not in CORPORA:
        path = Path(name).expanduser()
        if path.suffix or path.exists() or "/" in name:
            return _load_text_file(path)
        raise unknown("corpus", name, list(CORPORA))
    spec = CORPORA[name]
    root = paths.data_dir(data_dir)
    files = _raw_files(name, spec, root)
    fingerprint = _fingerprint(files)
    samples = _cached(name, script, fingerprint, files)
    if forms:
        bad = [f for f in forms if f not in (*FORMS, OTHER)]
        if bad:
            raise unknown("form", bad[0], [*FORMS, OTHER])
        samples = [s for s in samples if s.category in forms]
    if not samples:
        raise PoetgenError(f"corpus '{name}' has no samples" + (f" of form {','.join(forms)}" if forms else ""))
    return Corpus(name, samples, fingerprint, script if spec.script else None)


def serves(name: str | None) -> str | None:
    """What the models of corpus ``name`` write: "poems" or "names"; None for a text file."""
    spec = CORPORA.get(name or "")
    return spec.serves if spec else None


def _raw_files(name: str, spec: CorpusSpec, root: Path) -> list[Path]:
    files = sorted(root.glob(spec.files))
    if not files:
        raise PoetgenError(
            f"corpus '{name}' not found in {root} (expected {spec.files}); "
            f"run `poetgen corpus download {name}` or pass --data-dir"
        )
    return files


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256(f"v{PREPARED_VERSION}".encode())
    for f in files:
        digest.update(f.name.encode())
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _cached(name: str, script: str, fingerprint: str, files: list[Path]) -> list[Sample]:
    return list(_cached_tuple(name, script, fingerprint, tuple(files)))


@lru_cache(maxsize=8)
def _cached_tuple(name: str, script: str, fingerprint: str, files: tuple[Path, ...]) -> tuple[Sample, ...]:
    spec = CORPORA[name]
    tag = script if spec.script else "all"
    cache = paths.cache_dir() / "prepared" / f"{name}-{tag}-{fingerprint}-l{CACHE_LAYOUT}.jsonl"
    if cache.exists():
        try:
            with cache.open(encoding="utf-8") as fh:
                return tuple(Sample(**json.loads(line)) for line in fh)
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache file is only a cache: prepare the corpus again and overwrite it
    samples = spec.prepare(spec, list(files), script)
    _write_jsonl_atomic(cache, samples)
    return tuple(samples)


def _write_jsonl_atomic(path: Path, samples: list[Sample]) -> None:
    try:
        with paths.atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
            for s in samples:
                fh.write(json.dumps(asdict(s), ensure_ascii=False) + "\n")
    except OSError:
        pass  # a read-only or full cache only costs speed: the corpus is prepared again next time


# ---------------------------------------------------------------------------------------------
# Poems

# Editorial notes, matched non-greedily one at a time so two notes never swallow the verse
# between them (the classic bug of r"（.*）").
NOTE = re.compile(r"（[^（）]*）|\([^()]*\)|《[^《》]*》|〖[^〗]*〗|「[^「」]*」|『[^『』]*』|〈[^〈〉]*〉")
VARIANT = re.compile(r"\[([^\[\]]*)\]")  # "[襟]": an editor's reading, keep the character
LOST = re.compile(r"[□○●{}]")  # lost characters and ideographic descriptions: drop the poem
ALLOWED = re.compile(r"^[\u3400-\u9fff\U00020000-\U0002ffff，。？！；]+$")


def clean_poem(paragraphs: list[str]) -> str | None:
    """Join a poem's lines and clean them; None when the poem is damaged or empty."""
    if isinstance(paragraphs, str):  # a hand-made file may give the poem as one string
        paragraphs = [paragraphs]
    if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
        return None  # damaged record (numbers, nested lists): skip it like any damaged poem
    text = "".join(p.strip() for p in paragraphs)
    text = clean_marks(text)
    while True:  # notes may nest: 「…」 inside （…）; peel them from the inside out
        stripped = NOTE.sub("", text)
        if stripped == text:
            break
        text = stripped
    text = VARIANT.sub(r"\1", text)
    text = re.sub(r"[0-9０-９]", "", text)
    if LOST.search(text) or not text or not ALLOWED.match(text):
        return None
    if text[-1] not in LINE_END:
        text += "。"
    return text


@lru_cache(maxsize=2)
def converter(config: str):
    import opencc

    return opencc.OpenCC(config)


SURROGATES = re.compile("([\ud800-\udfff]+)")  # undecodable command-line bytes (PEP 383)


def to_script(text: str, script: str) -> str:
    """Convert between scripts with OpenCC (t2s is many-to-one; s2t may guess).

    Lone surrogates, which OpenCC cannot encode, are passed through unchanged."""
    convert = converter("t2s" if script == "simplified" else "s2t").convert
    if not SURROGATES.search(text):
        return convert(text)
    return "".join(part if i % 2 else convert(part) for i, part in enumerate(SURROGATES.split(text)))


def _hash_split(key: str, val: float = 0.02, test: float = 0.02) -> str:
    """Deterministic split from a content hash: stable across runs, machines and scripts."""
    x = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if x < test else "val" if x < test + val else "train"


def _prepare_poems(spec: CorpusSpec, files: list[Path], script: str) -> list[Sample]:
    """Cleaned, de-duplicated poems in ``script``, each labelled by ``spec.category`` and split by
    a hash of its simplified text (``spec.split``)."""
    seen: set[str] = set()
    samples = []
    for path in files:
        for item in _read_json(path):
            text = clean_poem(item.get("paragraphs") or [])
            if text is None:
                continue
            # Deduplicate and split on the simplified form, so the two scripts share one split.
            simplified = to_script(text, "simplified")
            if simplified in seen:
                continue
            seen.add(simplified)
            # A traditional archive (Tang) is kept as it is: s2t on traditional text would "convert"
            # 床 to 牀 and the like. A simplified one (Song ci) is converted.
            out = simplified if script == "simplified" else text if spec.script == script else to_script(text, script)
            samples.append(Sample(out, spec.category(out, item), _hash_split(simplified, *spec.split),
                                  _author(item, spec, script)))
    return samples


def _author(item: dict, spec: CorpusSpec, script: str) -> str | None:
    author = item.get("author")
    if not isinstance(author, str) or not author.strip():
        return None
    author = author.strip()
    # Poets are named in the archive's script (Tang traditional, Song simplified): bring them to the script.
    return to_script(author, script) if spec.script != script else author


def _read_json(path: Path) -> list[dict]:
    try:
        data = json.loads(paths.read_text(path))
    except json.JSONDecodeError as e:
        raise PoetgenError(f"corrupt JSON in {path} at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(data, list):
        raise PoetgenError(f"{path}: expected a JSON list of poems")
    return [d for d in data if isinstance(d, dict)]


# ---------------------------------------------------------------------------------------------
# Names


def normalize_name(name: str) -> str:
    """NFC-normalise and trim a name; keeps letters such as é, ß, ł as they are."""
    return unicodedata.normalize("NFC", name).strip()


def _prepare_names(spec: CorpusSpec, files: list[Path], script: str = "", seed: int = 0) -> list[Sample]:
    """Distinct (name, language) pairs with a leak-free split by distinct name string; the
    language is the file's name. ``script`` does not apply to names.

    The raw lists repeat names (Arabic: 2,000 rows, 108 names) and share names across languages
    (Scottish is almost a subset of English): every copy of a name string goes to the same side,
    and the split is stratified by the name's most frequent language, ``spec.split`` (10% and
    10%) of each language's names for validation and test.
    """
    rows: Counter[tuple[str, str]] = Counter()
    for path in files:
        language = path.stem
        lines = paths.read_text(path).splitlines()
        for line in lines:
            name = normalize_name(line)
            if name:
                rows[name, language] += 1
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for (name, language), n in rows.items():
        labels[name][language] += n
    by_primary: dict[str, list[str]] = defaultdict(list)
    for name, counts in labels.items():
        primary = min(counts, key=lambda lang: (-counts[lang], lang))
        by_primary[primary].append(name)
    side: dict[str, str] = {}
    rng = random.Random(seed)
    for language in sorted(by_primary):
        names = sorted(by_primary[language])
        rng.shuffle(names)
        n_val, n_test = (max(1, round(share * len(names))) for share in spec.split)
        for i, name in enumerate(names):
            side[name] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return [Sample(name, lang, side[name]) for (name, lang) in sorted(rows)]


# ---------------------------------------------------------------------------------------------
# The corpora poetgen knows by name


def _form_of(text: str, item: dict) -> str:
    return poem_form(text)


def _tune_of(text: str, item: dict) -> str:
    return tune_name(item.get("rhythmic") or "")


def tune_name(title: str) -> str:
    """A ci's tune from its title: "A・B" is the alias A of tune B; a lost tune (失调名) is other."""
    tune = title.rsplit("・", 1)[-1].strip()
    return OTHER if not tune or tune == "失调名" else tune


CORPORA: dict[str, CorpusSpec] = {
    # Complete Tang Poems, traditional in the archive. The product writes regulated verse, so
    # training keeps the four regulated forms unless asked for 古体 (other).
    "tang": CorpusSpec("chinese-poetry/quantangshi/poet.tang.*.json", _prepare_poems, "traditional", "poems",
                       (0.02, 0.02), _form_of, forms=FORMS, styles=24),
    # Song ci, simplified in the archive; a ci's category is its tune (词牌).
    "songci": CorpusSpec("chinese-poetry/songci/ci.song.*.json", _prepare_poems, "simplified", "poems",
                         (0.02, 0.02), _tune_of),
    # The PyTorch tutorial's surnames, one file per language.
    "names": CorpusSpec("names/*.txt", _prepare_names, None, "names", (0.1, 0.1)),
}


# ---------------------------------------------------------------------------------------------
# Plain text


def _load_text_file(path: Path) -> Corpus:
    if path.is_dir():
        raise PoetgenError(f"corpus {path} is a folder: give a text file (one sample per line) "
                           f"or one of {', '.join(CORPORA)} (their data folder is --data-dir)")
    if not path.exists():
        raise PoetgenError(f"corpus file {path} does not exist")
    text = paths.read_text(path)
    lines = [unicodedata.normalize("NFC", line).strip() for line in text.splitlines()]
    samples = [Sample(line, None, _hash_split(line, 0.05, 0.05)) for line in dict.fromkeys(lines) if line]
    if not samples:
        raise PoetgenError(f"{path} has no non-empty lines")
    return Corpus(path.name, samples, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])


# ---------------------------------------------------------------------------------------------
# Statistics for `poetgen corpus info`


def corpus_info(corpus: Corpus) -> dict:
    """Counts per category and split, character inventory and a length histogram."""
    per_category = Counter(s.category or "-" for s in corpus.samples)
    per_split = Counter(s.split for s in corpus.samples)
    chars = Counter(ch for s in corpus.samples for ch in s.text)
    lengths = [len(s.text) for s in corpus.samples]
    edges = [0, 8, 16, 32, 64, 128, 256, 10**9]
    histogram = {
        f"{lo + 1}–{hi}" if hi < 10**9 else f">{lo}": sum(lo < n <= hi for n in lengths)
        for lo, hi in itertools.pairwise(edges)
    }
    return {
        "corpus": corpus.name,
        "fingerprint": corpus.fingerprint,
        "script": corpus.script,
        "samples": len(corpus.samples),
        "splits": {k: per_split.get(k, 0) for k in SPLITS},
        "categories": dict(per_category.most_common()),
        "distinct_chars": len(chars),
        "tokens": sum(chars.values()),
        "length_histogram": {k: v for k, v in histogram.items() if v},
    }
