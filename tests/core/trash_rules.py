"""The store state machine's rules for the trash and the change feed: restore, purge,
empty, page the trash, let the retention window pass, misuse tokens; and the
invariants that the trash and both followers of each user's feed equal the model."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.core.feed_model import Gone
from tests.core.store_machine import (
    REFS,
    RETENTION,
    TRASHED_REFS,
    USERS,
    ModelledStore,
    Ref,
    check_timestamps,
    fields_of,
    other_user,
)
from todo_core import InvalidCursor, TaskNotFound, TaskStore, subscribe
from todo_core.errors import InvalidSyncToken, SyncTokenExpired
from todo_core.feed import PURGE_GRACE, TrashQuery


class TrashAndFeedRules(ModelledStore):
    """Rules and invariants of the trash and the feed, over ``ModelledStore``."""

    def in_trash_else_refused(self, ref: Ref, call: Coroutine[Any, Any, object]) -> Gone | None:
        """The model's trash entry of ``ref``; without one, ``call`` must find no task
        (and is run here, so that it is never left unawaited)."""
        gone = self.feed.in_trash(ref.user_id, ref.task_id)
        if gone is None:
            with pytest.raises(TaskNotFound):
                self.run(call)
        return gone

    @rule(ref=st.one_of(TRASHED_REFS, REFS))
    def restore(self, ref: Ref) -> None:
        """A trashed task comes back as it was, at its next version and a later
        updated_at; anything else is not in the trash."""
        call = self.store.restore(ref.user_id, ref.task_id)
        gone = self.in_trash_else_refused(ref, call)
        if gone is None:
            return
        event("trash: restored")
        restored = self.run(call)
        check_timestamps(restored)
        before = gone.task
        assert restored.updated_at > before.updated_at, "a restore is a write"
        assert fields_of(restored) == fields_of(before) | {
            "updated_at": restored.updated_at,
            "version": before.version + 1,
        }
        self.feed.restored(ref.user_id, ref.task_id)
        self.model[ref.user_id, ref.task_id] = restored

    @rule(ref=st.one_of(TRASHED_REFS, REFS))
    def purge(self, ref: Ref) -> None:
        """A trashed task leaves the trash for good, answered as the trash showed it."""
        call = self.store.purge(ref.user_id, ref.task_id)
        gone = self.in_trash_else_refused(ref, call)
        if gone is None:
            return
        event("trash: purged one")
        purged = self.run(call)
        assert fields_of(purged) == fields_of(gone.task) | {"deleted_at": gone.deleted_at}
        self.feed.purged(ref.user_id, ref.task_id)
        with pytest.raises(TaskNotFound):  # purging twice
            self.run(self.store.purge(ref.user_id, ref.task_id))
        with pytest.raises(TaskNotFound):  # nor can it come back
            self.run(self.store.restore(ref.user_id, ref.task_id))

    @rule(user_id=st.sampled_from(USERS))
    def empty_trash(self, user_id: str) -> None:
        trash = self.feed.trash(user_id)
        event(f"trash: emptied {min(len(trash), 3)}{'+' if len(trash) > 3 else ''}")
        assert self.run(self.store.empty_trash(user_id)) == len(trash)
        for entry in trash:
            self.feed.purged(user_id, entry["id"])

    @rule(
        user_id=st.sampled_from(USERS), limits=st.lists(st.integers(1, 4), min_size=1, max_size=3)
    )
    def trash_pages(self, user_id: str, limits: list[int]) -> None:
        """The trash page by page, ``limit`` changing between pages; a trash cursor is
        the user's own."""
        items = self.whole_trash(user_id, limits)
        assert [fields_of(item) for item in items] == self.feed.trash(user_id)
        page = self.run(self.store.trash(user_id, TrashQuery(limit=1)))
        if page.next_cursor is not None:
            with pytest.raises(InvalidCursor):
                self.run(self.store.trash(other_user(user_id), TrashQuery(cursor=page.next_cursor)))

    @rule(
        leg=st.integers(1, 29).map(lambda days: timedelta(days=days)),
        rest=st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(hours=1)]),
        limit=st.integers(1, 3),
        data=st.data(),
    )
    def expire(self, leg: timedelta, rest: timedelta, limit: int, data: st.DataObject) -> None:
        """Let the retention window pass: the followers read, the clock moves ``leg`` on,
        the followers read again (so their tokens stay young), then the clock moves on
        to ``rest`` past the window of a pivot:
        now, or a deletion's time (the edge: exactly at the window is not past it).
        ``purge_expired``, ``limit`` at a time, then forgets exactly the tasks deleted
        before the window and its grace, and tokens older than the window are refused."""
        start = self.now
        old = {user_id: self.stalled(self.store.changes(user_id)).next_since for user_id in USERS}
        pivots = [start, *sorted(gone.deleted_at for gone in self.feed.gone.values())]
        pivot = data.draw(st.sampled_from(pivots), label="pivot")
        for moved in (timedelta(0), leg):
            self.now += moved
            for user_id in USERS:
                self.refresh(user_id)
                self.follow(user_id)
        # Deletions are kept PURGE_GRACE past the window (feed.py says why): land
        # within the grace or past it.
        grace = data.draw(st.sampled_from([timedelta(0), PURGE_GRACE]), label="grace")
        self.now = max(self.now, pivot + RETENTION + grace + rest)
        cutoff = self.now - RETENTION
        purged = 0
        for _ in range(10_000):
            count = self.stalled(self.store.purge_expired(limit=limit))
            assert 0 <= count <= limit
            purged += count
            if count == 0:
                break
        expected = self.feed.expire(cutoff - PURGE_GRACE)
        event(f"expire: {'none' if not expected else 'some'} purged")
        for user_id in USERS:
            self.refresh(user_id)  # read by the invariant, at this time
        assert purged == expected, "purge_expired forgets exactly what is past the window"
        tokens = [(user_id, token, start) for user_id, token in old.items()]
        tokens += [(user_id, *origin) for user_id, origin in self.origins.items()]
        for user_id, token, taken_at in tokens:
            if taken_at < cutoff:
                with pytest.raises(SyncTokenExpired):
                    self.stalled(self.store.changes(user_id, token))
                with pytest.raises(SyncTokenExpired):
                    self.stalled(opened(self.store, user_id, token))
            else:  # at the window's edge, or younger: still good
                event(f"expire: token {'at the edge' if taken_at == cutoff else 'young'}")
                self.stalled(self.store.changes(user_id, token))

    @rule(
        user_id=st.sampled_from(USERS),
        misuse=st.sampled_from(["tampered", "other user", "garbage", "empty", "trash cursor"]),
    )
    def misuse_token(self, user_id: str, misuse: str) -> None:
        """A feed token works only as the user's own, as issued; a subscription refuses
        the same tokens when it opens."""
        token = self.replicas[user_id].token
        flipped = "B" if token[0] == "A" else "A"  # the first character is payload
        cursor = self.run(self.store.trash(user_id, TrashQuery(limit=1))).next_cursor
        attempts = {
            "tampered": (user_id, flipped + token[1:]),
            "other user": (other_user(user_id), token),
            "garbage": (user_id, "not-a-token"),
            "empty": (user_id, ""),
            "trash cursor": (user_id, cursor or "no-cursor"),
        }
        owner, bad = attempts[misuse]
        with pytest.raises(InvalidSyncToken):
            self.run(self.store.changes(owner, bad))
        with pytest.raises(InvalidSyncToken):
            self.run(opened(self.store, owner, bad))

    @rule(
        user_id=st.sampled_from(USERS),
        limit=st.one_of(st.sampled_from([0, 501]), st.integers(max_value=0), st.integers(501)),
    )
    def reject_bad_limit(self, user_id: str, limit: int) -> None:
        """A feed page holds 1-500 changes; a subscription refuses any other size too."""
        token = self.replicas[user_id].token
        with pytest.raises(pydantic.ValidationError):
            self.run(self.store.changes(user_id, token, limit=limit))
        with pytest.raises(pydantic.ValidationError):
            self.run(opened(self.store, user_id, token, limit=limit))

    @invariant()
    def trash_equals_the_model(self) -> None:
        for user_id in USERS:
            assert [fields_of(item) for item in self.whole_trash(user_id)] == self.feed.trash(
                user_id
            )

    @invariant()
    def followers_equal_the_model(self) -> None:
        """Checked after every step: see ``follow``."""
        if self.replicas:  # not before ``seed`` has run
            for user_id in USERS:
                self.follow(user_id)


async def opened(store: TaskStore, user_id: str, since: str, limit: int = 100) -> None:
    """Open a subscription from ``since``, and close it at once."""
    async with subscribe(store, user_id, since, limit=limit):
        pass
