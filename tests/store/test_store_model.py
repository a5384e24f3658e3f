"""Property: any sequence of batches leaves SqliteStore and MemoryStore in the same state,
and that state is what replaying the helpers' "last call wins" rule on a dict gives."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbatch.store import MemoryStore, SqliteStore, Store, WriteBatch

KINDS = ("job", "queue")
keys = st.sampled_from(["a", "b", "c", "d"])
ops = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KINDS), keys, st.text(max_size=5)),
    st.tuples(st.just("delete"), st.sampled_from(KINDS), keys, st.just("")),
    st.tuples(st.just("log"), st.just(""), keys, st.text(max_size=5)),
    st.tuples(st.just("meta"), st.just(""), keys, st.text(max_size=5)),
)
batches = st.lists(st.lists(ops, max_size=8), max_size=6)

Op = tuple[str, str, str, str]


def build(batch_ops: list[Op], model: dict[tuple[str, str], str]) -> WriteBatch:
    batch = WriteBatch()
    for op, kind, key, text in batch_ops:
        if op == "put":
            batch.put(kind, key, text)
            model[(kind, key)] = text
        elif op == "delete":
            batch.delete(kind, key)
            model.pop((kind, key), None)
        elif op == "log":
            batch.log(0, "c", key, text)
        else:
            batch.set_meta(key, text)
    return batch


@settings(max_examples=60, deadline=None)
@given(batches)
def test_sqlite_and_memory_agree_with_the_model(all_ops: list[list[Op]]) -> None:
    model: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[Store] = [SqliteStore(Path(tmp) / "s.db"), MemoryStore()]
        try:
            for batch_ops in all_ops:
                batch = build(batch_ops, model)
                for store in stores:
                    store.write(batch)
            for kind in KINDS:
                expected = sorted((k, v) for (kd, k), v in model.items() if kd == kind)
                assert [s.load(kind) for s in stores] == [expected, expected]
            for key in ("a", "b", "c", "d"):
                sql, mem = (s.history(key) for s in stores)
                assert [(e.event, e.detail) for e in sql] == [(e.event, e.detail) for e in mem]
                assert sql == sorted(sql, key=lambda e: e.seq)
                assert stores[0].get_meta(key) == stores[1].get_meta(key)
        finally:
            for store in stores:
                store.close()
