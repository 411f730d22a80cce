"""Property-based fuzz of the loader and validator (Hypothesis): random JSON documents and
mutations of every shipped preset. Whatever comes in, the answer is a graph or GraphInvalid
(exit 2 at the command line) with printable messages: never another exception, and never more
than a bounded time and memory per document. Bounded: a few hundred examples in all."""
from __future__ import annotations

import copy
import json
import time
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusegraph.nodes import REGISTRY
from fusegraph.runtime.errors import GraphInvalid
from fusegraph.runtime.loader import MAX_DEPTH, load, read_document

PRESETS = sorted(Path(__file__).resolve().parent.parent.joinpath("presets").glob("*.json"))
DOCS = {p.name: json.loads(p.read_text()) for p in PRESETS}
SECONDS = 2.0  # per document, on a loaded 2-core machine; a typical one takes milliseconds
MEGABYTES = 64

# Values a hostile or mistaken preset may hold: every JSON type, odd strings and numbers.
text = st.one_of(st.text(max_size=20), st.sampled_from(["", "\x1b[2J", "\0", "a.b", "src.out", "{frame:0>99}",
                                                         "../x.png", "/dev/zero", "NaN", " " * 40]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), text,
                   st.floats(allow_nan=True, allow_infinity=True))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(text, inner, max_size=4)), max_leaves=12)
kinds = st.sampled_from(sorted(REGISTRY) + ["blurr", ""])


@st.composite
def node(draw):
    n = {"id": draw(st.one_of(st.sampled_from(["a", "b", "src", "out"]), value)), "type": draw(st.one_of(kinds, value))}
    if draw(st.booleans()):
        n["params"] = draw(st.one_of(st.dictionaries(text, value, max_size=3), value))
    return n


@st.composite
def document(draw):
    doc = {}
    if draw(st.booleans()):
        doc["format"] = draw(st.one_of(st.sampled_from([1, 2, 3]), value))
    doc["nodes"] = draw(st.one_of(st.lists(node(), max_size=6), value))
    key = draw(st.sampled_from(["links", "edges"]))
    doc[key] = draw(st.one_of(st.lists(st.one_of(
        st.fixed_dictionaries({"from": text, "to": text}), st.lists(text, min_size=4, max_size=4), value), max_size=6), value))
    return doc


def paths(doc, prefix=()):
    """Every place in a document: (path of keys/indices)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


@st.composite
def mutated_preset(draw):
    """A shipped preset with a few places replaced, deleted or duplicated."""
    doc = copy.deepcopy(DOCS[draw(st.sampled_from(sorted(DOCS)))])
    for _ in range(draw(st.integers(1, 4))):
        places = [p for p in paths(doc) if p]
        if not places:
            break
        where = draw(st.sampled_from(places))
        parent = doc
        for k in where[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "replace":
            parent[where[-1]] = draw(value)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[where[-1]]))
    return doc


def check(doc, tmp_path) -> None:
    """The loader's contract on one document, read from a file as the CLI reads it, with and
    without a --set override."""
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    for sets in ([], ["a.sigma=3"]):
        tracemalloc.start()
        t = time.perf_counter()
        try:
            load(str(path), sets)
        except GraphInvalid as exc:
            message = str(exc)
            assert exc.errors and not any(c in message for c in "\x1b\x07\0")
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert time.perf_counter() - t < SECONDS
        assert peak < MEGABYTES * 2**20


FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(doc=document())
def test_random_documents(tmp_path, doc):
    check(doc, tmp_path)


@FUZZ
@given(doc=mutated_preset())
def test_mutated_presets(tmp_path, doc):
    check(doc, tmp_path)


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(MAX_DEPTH - 2, 3000), digits=st.integers(1, 6000))
def test_deep_and_long_numbers(tmp_path, depth, digits):
    path = tmp_path / "deep.json"
    path.write_text('{"nodes": ' + "[" * depth + "9" * digits + "]" * depth + "}")
    try:
        read_document(path)
    except GraphInvalid as exc:
        assert exc.errors[0].code == "json"
