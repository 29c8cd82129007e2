from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np
from conftest import opened

from digest.models import Paper, paper_identity
from digest.store import Store


def _paper(title: str, day: str = "2026-11-20", **kw) -> Paper:
    day = date.fromisoformat(day)
    return Paper(
        id=paper_identity(kw.pop("arxiv", None), title),
        title=title,
        abstract=f"About {title}.",
        day=day,
        **kw,
    )


def test_same_paper_twice_is_stored_once_keeping_its_first_day(store: Store):
    assert store.add_papers([_paper("A", "2026-11-19")]).new == 1
    result = store.add_papers([_paper("A", "2026-11-20", upvotes=9, authors_count=3)])
    assert (result.new, result.updated) == (0, 1)
    (paper,) = store.papers()
    assert paper.day == date(2026, 11, 19)
    assert (paper.upvotes, paper.authors_count) == (9, 3)


def test_later_input_without_metadata_does_not_erase_it(store: Store):
    store.add_papers([_paper("A", upvotes=5, organization="Acme")])
    store.add_papers([_paper("A")])
    (paper,) = store.papers()
    assert (paper.upvotes, paper.organization) == (5, "Acme")


def test_catchup_window_returns_papers_of_several_days(store: Store):
    store.add_papers([_paper("old", "2026-11-10"), _paper("a", "2026-11-18"), _paper("b", "2026-11-20")])
    assert [p.title for p in store.papers(date(2026, 11, 20), since=date(2026, 11, 18))] == ["a", "b"]


def test_a_delivery_can_be_claimed_only_once(database: str):
    with opened(database) as first, opened(database) as second:
        assert first.claim_delivery("alice", date(2026, 11, 20)) is True
        assert second.claim_delivery("alice", date(2026, 11, 20)) is False
        assert second.claim_delivery("alice", date(2026, 11, 20), retry_unknown=True) is True
        first.finish_delivery("alice", date(2026, 11, 20), status="pending")
        assert second.claim_delivery("alice", date(2026, 11, 20)) is True
        second.finish_delivery("alice", date(2026, 11, 20), status="sent")
        assert first.claim_delivery("alice", date(2026, 11, 20), retry_unknown=True) is False


def test_of_many_processes_claiming_at_once_exactly_one_wins_each_delivery(database: str):
    """Six claimers on their own connections race for the same 40 deliveries."""
    day, readers = date(2026, 11, 20), [f"r{i}" for i in range(40)]
    opened(database).close()  # migrated once, before the race
    start = threading.Barrier(6)

    def claim_all() -> list[str]:
        with opened(database) as s:
            start.wait()
            return [r for r in readers if s.claim_delivery(r, day)]

    with ThreadPoolExecutor(6) as pool:
        won = [r for result in pool.map(lambda _: claim_all(), range(6)) for r in result]
    assert sorted(won) == sorted(readers)


def test_first_runs_at_once_migrate_once_and_both_open(database: str):
    start = threading.Barrier(4)

    def open_and_add(i: int) -> int:
        start.wait()
        with opened(database) as s:
            return s.add_papers([_paper(f"P{i}")]).new

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_add, range(4))) == [1, 1, 1, 1]
    with opened(database) as s:
        assert sorted(p.title for p in s.papers()) == ["P0", "P1", "P2", "P3"]


def test_sent_papers_are_remembered_per_subscriber_and_day(store: Store):
    store.claim_delivery("alice", date(2026, 11, 19))
    store.finish_delivery("alice", date(2026, 11, 19), status="sent", paper_ids=["p1", "p2"])
    assert store.sent_paper_ids("alice") == {"p1", "p2"}
    assert store.sent_paper_ids("alice", before=date(2026, 11, 19)) == set()
    assert store.sent_paper_ids("bob") == set()
    (delivery,) = store.deliveries()
    assert (delivery.status, delivery.paper_ids) == ("sent", ("p1", "p2"))


def test_reopening_a_database_keeps_everything(database: str):
    with opened(database) as s:
        s.add_papers([_paper("A")])
        s.cache_vectors("m", {"h": np.ones(3, dtype=np.float32)})
    with opened(database) as s:
        assert [p.title for p in s.papers()] == ["A"]
        assert s.cached_vectors("m", ["h"])["h"].tolist() == [1.0, 1.0, 1.0]


def test_the_embedding_cache_is_bounded_oldest_first(store: Store):
    vector = np.ones(384, dtype=np.float32)  # 1,536 bytes each
    store.cache_vectors("m", {f"old{i}": vector for i in range(10)})
    store.conn.execute("UPDATE embeddings SET added_at = '2020-01-01T00:00:00+00:00'")
    store.cache_vectors("m", {f"new{i}": vector for i in range(10)})
    assert store.cache_size() == (20, 20 * 1536)
    removed = store.prune_cache(max_bytes=12 * 1536)
    count, size = store.cache_size()
    assert size <= 12 * 1536 and count == 20 - removed >= 10
    assert set(store.cached_vectors("m", [f"new{i}" for i in range(10)])) == {f"new{i}" for i in range(10)}
    assert store.prune_cache(max_bytes=10**9) == 0


def test_a_batch_reads_only_its_own_ledger_rows_of_the_day(store: Store):
    day = date(2026, 11, 20)
    for who in ("alice", "bob", "carol"):
        store.claim_delivery(who, day)
    store.claim_delivery("alice", date(2026, 11, 19))
    assert [d.subscriber_id for d in store.deliveries(day, subscribers=["carol", "alice", "dan"])] == [
        "alice",
        "carol",
    ]
    many = [f"r{i}" for i in range(1200)] + ["bob"]  # more than one query's worth of ids
    assert [d.subscriber_id for d in store.deliveries(day, subscribers=many)] == ["bob"]


def test_counts_beyond_32_bits_are_stored_as_given(store: Store):
    store.add_papers([_paper("Viral", upvotes=99_999_999_999, authors_count=3_000_000_000)])
    (paper,) = store.papers()
    assert (paper.upvotes, paper.authors_count) == (99_999_999_999, 3_000_000_000)
