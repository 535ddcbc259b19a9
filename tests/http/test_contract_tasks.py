"""The task endpoints: status codes, Location, envelopes, task bodies and their rules."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest

from tests.http.api_client import (
    NO_BODY,
    TASK_FIELDS,
    TIMESTAMP,
    ApiClient,
    ClientFactory,
    Reply,
    task_path,
    tasks_path,
)
from tests.http.faulty_store import FaultyStore

ALICE = "alice"
BOB = "bob"


def assert_task(data: Any, **expected: Any) -> None:
    """``data`` is a task representation with exactly the contract's fields."""
    assert isinstance(data, dict)
    assert set(data) == TASK_FIELDS
    assert str(UUID(data["id"])) == data["id"], "ids are written lower-case, hyphenated"
    assert TIMESTAMP.fullmatch(data["created_at"]), data
    assert TIMESTAMP.fullmatch(data["updated_at"]), data
    assert isinstance(data["completed"], bool)
    for name, value in expected.items():
        assert data[name] == value, (name, data)


def assert_success(reply: Reply, status: int) -> None:
    """A success envelope with a message and no ``meta``."""
    assert reply.status == status, reply
    envelope = reply.json()
    assert set(envelope) == {"success", "data", "message"}, envelope
    assert envelope["success"] is True
    assert isinstance(envelope["message"], str)
    assert envelope["message"]


class TestCreate:
    """POST /api/{user_id}/tasks creates a task and answers 201 with Location and ETag."""

    async def test_answers_201_with_the_new_task_and_its_defaults(self, client: ApiClient) -> None:
        """A title alone makes a task with description null and completed false."""
        reply = await client.post(tasks_path(ALICE), json={"title": "Buy milk"})
        assert_success(reply, 201)
        data = reply.data
        assert_task(data, title="Buy milk", description=None, completed=False, user_id=ALICE)
        assert data["created_at"] == data["updated_at"]

    async def test_location_is_an_absolute_path_that_gets_the_task(self, client: ApiClient) -> None:
        """Location is /api/{user_id}/tasks/{id}, and GET of it returns the same task."""
        reply = await client.post(tasks_path(ALICE), json={"title": "x"})
        location = reply.headers["Location"]
        assert location == task_path(ALICE, reply.data["id"])
        fetched = await client.get(location)
        assert fetched.status == 200
        assert fetched.data == reply.data
        assert fetched.headers["ETag"] == reply.headers["ETag"]

    async def test_takes_every_writable_field(self, client: ApiClient) -> None:
        """title, description and completed are stored as given."""
        data = await client.create(ALICE, title="t", description="d", completed=True)
        assert_task(data, title="t", description="d", completed=True)

    @pytest.mark.parametrize(
        ("sent", "stored"),
        [
            ("  Buy milk \t\n", "Buy milk"),
            ("\x1c\x1d\x1e\x1fx\x85\u3000\u00a0", "x"),
            ("\u2028 a b \u2029", "a b"),
        ],
    )
    async def test_strips_the_title_as_python_str_strip_does(
        self, client: ApiClient, sent: str, stored: str
    ) -> None:
        """Leading and trailing whitespace, as str.strip() sees it, is removed from titles."""
        data = await client.create(ALICE, title=sent)
        assert data["title"] == stored == sent.strip()

    @pytest.mark.parametrize("description", ["", "  spaced  ", "\n"])
    async def test_stores_the_description_exactly(
        self, client: ApiClient, description: str
    ) -> None:
        """description is never stripped, and "" stays ""."""
        data = await client.create(ALICE, description=description)
        assert data["description"] == description
        assert (await client.fetch(ALICE, data["id"])).data["description"] == description

    async def test_assigns_a_new_id_every_time(self, client: ApiClient) -> None:
        """Two creates with the same body make two tasks."""
        first = await client.create(ALICE, title="same")
        second = await client.create(ALICE, title="same")
        assert first["id"] != second["id"]
        assert sorted(await client.ids(ALICE)) == sorted([first["id"], second["id"]])


BROKEN_RULES: list[tuple[dict[str, Any], str]] = [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   \t\n"}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": "😀" * 201}, "title"),
    ({"title": " " + "x" * 201 + " "}, "title"),
    ({"title": "e\u0301" * 101}, "title"),
    ({"title": 5}, "title"),
    ({"title": None}, "title"),
    ({"title": ["x"]}, "title"),
    ({"title": True}, "title"),
    ({"title": "a\x00b"}, "title"),
    ({"title": "x", "description": "a\x00"}, "description"),
    ({"title": "x", "description": "d" * 1001}, "description"),
    ({"title": "x", "description": "😀" * 1001}, "description"),
    ({"title": "x", "description": 5}, "description"),
    ({"title": "x", "description": {}}, "description"),
    ({"title": "x", "completed": "true"}, "completed"),
    ({"title": "x", "completed": 1}, "completed"),
    ({"title": "x", "completed": 0}, "completed"),
    ({"title": "x", "completed": None}, "completed"),
    ({"title": "x", "completed": "false"}, "completed"),
]
BOUNDARIES: list[dict[str, Any]] = [
    {"title": "x"},
    {"title": "x" * 200},
    {"title": "😀" * 200},
    {"title": "e\u0301" * 100},
    {"title": "\t" + "y" * 200 + "  "},
    {"title": "x", "description": "d" * 1000},
    {"title": "x", "description": "😀" * 1000},
    {"title": "x", "description": None},
    {"title": "x", "completed": False},
]


class TestFieldRules:
    """Bodies that break a field rule are 422 naming the field, and change nothing."""

    @pytest.mark.parametrize("method", ["POST", "PUT"])
    async def test_rejects_and_names_the_field(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """Each broken rule is a 422 VALIDATION_ERROR whose details name the member."""
        existing = await client.create(BOB)
        path = tasks_path(ALICE) if method == "POST" else task_path(BOB, existing["id"])
        before = await client.fetch(BOB, existing["id"])
        for body, field in BROKEN_RULES:
            with subtests.test(body=body):
                reply = await client.request(method, path, json=body)
                assert reply.status == 422, reply
                assert reply.code == "VALIDATION_ERROR"
                assert field in reply.fields
                assert await client.ids(ALICE) == []
                assert (await client.fetch(BOB, existing["id"])).body == before.body

    async def test_accepts_the_boundaries(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """1 and 200 code points of title and 1000 of description are accepted as sent."""
        for body in BOUNDARIES:
            with subtests.test(body=body):
                data = await client.create(ALICE, **body)
                assert data["title"] == body["title"].strip()
                assert data["description"] == body.get("description")
                assert len(data["title"]) in {1, 200}


class TestGet:
    """GET /api/{user_id}/tasks/{task_id} answers 200 with the task and its ETag."""

    async def test_answers_the_task(self, client: ApiClient) -> None:
        """The task as created, with a strong ETag."""
        created = await client.create(ALICE, title="t", description="d")
        reply = await client.get(task_path(ALICE, created["id"]))
        assert_success(reply, 200)
        assert reply.data == created
        assert reply.headers["ETag"].startswith('"')

    async def test_unknown_id_is_404(self, client: ApiClient) -> None:
        """A well-formed id that names no task is 404 NOT_FOUND."""
        await client.create(ALICE)
        reply = await client.get(task_path(ALICE, str(uuid4())))
        assert reply.status == 404
        assert reply.code == "NOT_FOUND"
        assert reply.error["details"] == []


class TestReplace:
    """PUT replaces every writable field; omitted ones take their defaults."""

    async def test_omitted_fields_become_defaults(self, client: ApiClient) -> None:
        """Omitted description becomes null and omitted completed becomes false."""
        created = await client.create(ALICE, title="old", description="d", completed=True)
        reply = await client.put(task_path(ALICE, created["id"]), json={"title": " new "})
        assert_success(reply, 200)
        assert_task(
            reply.data,
            id=created["id"],
            user_id=ALICE,
            title="new",
            description=None,
            completed=False,
            created_at=created["created_at"],
        )
        assert reply.data["updated_at"] > created["updated_at"]
        assert (await client.fetch(ALICE, created["id"])).data == reply.data

    async def test_sets_every_field(self, client: ApiClient) -> None:
        """All three writable fields are replaced by the body's."""
        created = await client.create(ALICE)
        body = {"title": "t2", "description": "d2", "completed": True}
        reply = await client.put(task_path(ALICE, created["id"]), json=body)
        assert reply.status == 200
        assert_task(reply.data, **body)

    async def test_title_is_required(self, client: ApiClient) -> None:
        """A PUT without a title is 422 naming title, and changes nothing."""
        created = await client.create(ALICE)
        before = await client.fetch(ALICE, created["id"])
        reply = await client.put(task_path(ALICE, created["id"]), json={"completed": True})
        assert reply.status == 422
        assert reply.fields == ["title"]
        assert (await client.fetch(ALICE, created["id"])).body == before.body

    async def test_missing_task_is_404(self, client: ApiClient) -> None:
        """PUT never creates: an unknown id is 404."""
        reply = await client.put(task_path(ALICE, str(uuid4())), json={"title": "x"})
        assert reply.status == 404
        assert reply.code == "NOT_FOUND"
        assert await client.ids(ALICE) == []


class TestPatch:
    """PATCH is a JSON merge patch of title, description and completed."""

    async def test_changes_only_the_members_given(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Members not in the patch keep their values; description null clears it."""
        patches: list[dict[str, Any]] = [
            {"title": "new"},
            {"description": "new"},
            {"completed": True},
            {"description": None},
            {"title": " new ", "completed": True, "description": None},
        ]
        for patch in patches:
            with subtests.test(patch=patch):
                created = await client.create(ALICE, title="old", description="d")
                reply = await client.patch(task_path(ALICE, created["id"]), json=patch)
                assert_success(reply, 200)
                expected = {**created, **patch, "title": patch.get("title", "old").strip()}
                del expected["updated_at"]
                if patch.get("completed"):  # completing stamps completed_at with the write
                    expected["completed_at"] = reply.data["updated_at"]
                assert_task(reply.data, **expected)
                assert reply.data["updated_at"] > created["updated_at"]
                assert (await client.fetch(ALICE, created["id"])).data == reply.data

    async def test_rejects_bad_patches_and_changes_nothing(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """An empty patch, null title or completed, or a broken rule is 422."""
        created = await client.create(ALICE, description="d")
        before = await client.fetch(ALICE, created["id"])
        for patch, field in [
            ({}, "body"),
            ({"title": None}, "title"),
            ({"completed": None}, "completed"),
            ({"title": ""}, "title"),
            ({"title": "  "}, "title"),
            ({"completed": "true"}, "completed"),
            ({"description": "d" * 1001}, "description"),
            ({"description": "a\x00"}, "description"),
        ]:
            with subtests.test(patch=patch):
                reply = await client.patch(task_path(ALICE, created["id"]), json=patch)
                assert reply.status == 422, reply
                assert reply.code == "VALIDATION_ERROR"
                assert reply.fields == [field]
                after = await client.fetch(ALICE, created["id"])
                assert after.body == before.body
                assert after.headers["ETag"] == before.headers["ETag"]

    async def test_accepts_the_merge_patch_media_type(self, client: ApiClient) -> None:
        """PATCH takes application/merge-patch+json besides application/json."""
        created = await client.create(ALICE)
        reply = await client.patch(
            task_path(ALICE, created["id"]),
            json={"completed": True},
            content_type="application/merge-patch+json",
        )
        assert reply.status == 200, reply
        assert reply.data["completed"] is True


class TestDelete:
    """DELETE answers 200 with the deleted task; after that the task is gone."""

    async def test_answers_the_deleted_task_then_404(self, client: ApiClient) -> None:
        """The first DELETE is 200 with the task, the second 404, and GET is 404."""
        created = await client.create(ALICE, description="d")
        keep = await client.create(ALICE)
        first = await client.delete(task_path(ALICE, created["id"]))
        assert_success(first, 200)
        assert first.data == created
        second = await client.delete(task_path(ALICE, created["id"]))
        assert second.status == 404
        assert second.code == "NOT_FOUND"
        assert (await client.get(task_path(ALICE, created["id"]))).status == 404
        assert await client.ids(ALICE) == [keep["id"]]

    async def test_writes_after_delete_are_404(self, client: ApiClient) -> None:
        """PUT and PATCH of a deleted task are 404 and do not bring it back."""
        created = await client.create(ALICE)
        await client.delete(task_path(ALICE, created["id"]))
        path = task_path(ALICE, created["id"])
        assert (await client.put(path, json={"title": "x"})).status == 404
        assert (await client.patch(path, json={"title": "x"})).status == 404
        assert await client.ids(ALICE) == []


class TestReadOnlyAndUnknownFields:
    """Read-only and unknown members are 422 on every write, and nothing changes."""

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
    async def test_rejected_and_named(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """The member is named in details; no task is created or changed."""
        created = await client.create(ALICE)
        before = await client.fetch(ALICE, created["id"])
        path = tasks_path(ALICE) if method == "POST" else task_path(ALICE, created["id"])
        for member, value in [
            ("id", "00000000-0000-4000-8000-000000000000"),
            ("id", created["id"]),
            ("user_id", ALICE),
            ("user_id", BOB),
            ("created_at", "2020-01-01T00:00:00.000000Z"),
            ("updated_at", "2020-01-01T00:00:00.000000Z"),
            ("version", 7),
            ("foo", "bar"),
            ("Title", "x"),
        ]:
            with subtests.test(member=member, value=value):
                reply = await client.request(method, path, json={"title": "new", member: value})
                assert reply.status == 422, reply
                assert reply.code == "VALIDATION_ERROR"
                assert member in reply.fields
                assert await client.ids(ALICE) == [created["id"]]
                assert await client.ids(BOB) == []
                assert (await client.fetch(ALICE, created["id"])).body == before.body


class TestTaskIdCase:
    """task_id is accepted in any letter case and always written lower-case."""

    async def test_every_method_accepts_upper_case(self, client: ApiClient) -> None:
        """GET, HEAD, PUT, PATCH and DELETE find the task by its upper-case id."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"].upper())
        assert (await client.get(path)).data["id"] == created["id"]
        assert (await client.head(path)).status == 200
        assert (await client.put(path, json={"title": "p"})).data["id"] == created["id"]
        assert (await client.patch(path, json={"title": "q"})).data["id"] == created["id"]
        assert (await client.delete(path)).data["id"] == created["id"]
        assert (await client.get(task_path(ALICE, created["id"]))).status == 404

    async def test_mixed_case_and_location_are_lower_case(self, client: ApiClient) -> None:
        """Ids in bodies and Location are lower-case whatever case the client used."""
        reply = await client.post(tasks_path(ALICE), json={"title": "x"})
        task_id = reply.data["id"]
        assert task_id == task_id.lower()
        assert reply.headers["Location"].endswith(task_id)
        mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(task_id))
        assert (await client.get(task_path(ALICE, mixed))).data["id"] == task_id


class TestUserId:
    """user_id is matched after percent-decoding, case-sensitively, and validated."""

    async def test_is_case_sensitive(self, client: ApiClient) -> None:
        """Alice and alice are two users who never see each other's tasks."""
        upper = await client.create("Alice")
        lower = await client.create("alice")
        assert await client.ids("Alice") == [upper["id"]]
        assert await client.ids("alice") == [lower["id"]]
        assert (await client.get(task_path("alice", upper["id"]))).status == 404
        assert upper["user_id"] == "Alice"

    async def test_is_percent_decoded(self, client: ApiClient) -> None:
        """%61lice is alice, and a%40b is the user a@b."""
        created = await client.create(ALICE)
        assert await client.ids("%61lice") == [created["id"]]
        reply = await client.post(tasks_path("a%40b"), json={"title": "x"})
        assert reply.status == 201
        assert reply.data["user_id"] == "a@b"
        assert (await client.get(reply.headers["Location"])).data == reply.data
        assert await client.ids("a@b") == [reply.data["id"]]

    @pytest.mark.parametrize("user_id", ["a", "A-Za-z0-9._@-", "u" * 64, "x.y_z@example-1.com"])
    async def test_accepts_the_allowed_characters(self, client: ApiClient, user_id: str) -> None:
        """1-64 characters of A-Z a-z 0-9 . _ @ - are a user."""
        created = await client.create(user_id)
        assert created["user_id"] == user_id
        assert await client.ids(user_id) == [created["id"]]

    @pytest.mark.parametrize(
        "user_id",
        ["a%2Fb", "%00", "u" * 65, "%C3%A9", "é", "%FF", "a%20b", "a+b", "a%2Bb", "~", "a:b"],
    )
    @pytest.mark.parametrize(
        ("method", "has_id", "body"),
        [
            ("GET", False, NO_BODY),
            ("POST", False, {"title": "x"}),
            ("GET", True, NO_BODY),
            ("PUT", True, {"title": "x"}),
            ("PATCH", True, {"title": "x"}),
            ("DELETE", True, NO_BODY),
        ],
    )
    async def test_rejects_bad_ones_everywhere(
        self, serve: ClientFactory, user_id: str, method: str, has_id: bool, body: object
    ) -> None:
        """A bad user_id is 422 naming user_id before any store call is made."""
        store = FaultyStore(RuntimeError("the store must not be called"))
        client = await serve(store)
        path = task_path(user_id, str(uuid4())) if has_id else tasks_path(user_id)
        reply = await client.request(method, path, json=body)
        assert reply.status == 422, reply
        assert reply.code == "VALIDATION_ERROR"
        assert reply.fields == ["user_id"]


class TestOtherUsersTasks:
    """A task of another user is indistinguishable from one that does not exist."""

    async def test_answers_exactly_like_a_missing_task(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Same status and byte-identical body as a random id; the task is unchanged."""
        created = await client.create(ALICE, description="secret")
        before = await client.fetch(ALICE, created["id"])
        for method, body in [
            ("GET", NO_BODY),
            ("HEAD", NO_BODY),
            ("PUT", {"title": "x"}),
            ("PATCH", {"title": "x"}),
            ("DELETE", NO_BODY),
        ]:
            for headers in [
                {},
                {"If-Match": before.headers["ETag"]},
                {"If-Match": '"v999"'},
                {"If-None-Match": before.headers["ETag"]},
            ]:
                with subtests.test(method=method, headers=headers):
                    foreign = await client.request(
                        method, task_path(BOB, created["id"]), json=body, headers=headers
                    )
                    missing = await client.request(
                        method, task_path(BOB, str(uuid4())), json=body, headers=headers
                    )
                    assert foreign.status == missing.status == 404
                    assert foreign.body == missing.body
                    assert set(foreign.headers) == set(missing.headers)
                    assert b"secret" not in foreign.body
                    after = await client.fetch(ALICE, created["id"])
                    assert after.body == before.body
                    assert after.headers["ETag"] == before.headers["ETag"]
                    assert await client.ids(BOB) == []

    async def test_listings_hold_only_the_users_tasks(self, client: ApiClient) -> None:
        """Each user's listing holds exactly that user's tasks."""
        mine = [(await client.create(ALICE))["id"] for _ in range(3)]
        theirs = [(await client.create(BOB))["id"] for _ in range(2)]
        assert sorted(await client.ids(ALICE)) == sorted(mine)
        assert sorted(await client.ids(BOB)) == sorted(theirs)


class TestTimestamps:
    """Timestamps are RFC 3339 UTC with microseconds; updated_at rises on every write."""

    async def test_updated_at_strictly_increases(self, client: ApiClient) -> None:
        """Ten quick writes each move updated_at later; created_at never changes."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"])
        seen = [created["updated_at"]]
        for n in range(10):
            if n % 2:
                reply = await client.put(path, json={"title": "same"})
            else:
                reply = await client.patch(path, json={"completed": True})
            assert reply.status == 200
            assert TIMESTAMP.fullmatch(reply.data["updated_at"])
            assert reply.data["created_at"] == created["created_at"]
            seen.append(reply.data["updated_at"])
        assert seen == sorted(set(seen))

    async def test_concurrent_creates_have_valid_timestamps(self, client: ApiClient) -> None:
        """Timestamps are well-formed UTC and created_at equals updated_at on creation."""
        replies = await asyncio.gather(*(client.create(ALICE) for _ in range(5)))
        for data in replies:
            assert data["created_at"] == data["updated_at"]
            assert data["created_at"].endswith("Z")


UNICODE_TEXTS = [
    "🧑‍🚀 to the 🌕 👩🏽‍💻",
    "مرحبا بالعالم",
    "שָׁלוֹם עוֹלָם",
    "e\u0301 vs \u00e9",
    "\u0041\u030a\u212b\u00c5",
    "ctrl \x01\x07\x08\x0b\x0c\x1b[31m\x7f\x80\x9f",
    "zero\u200bwidth\u200d\ufeff\u2060",
    "line\u2028para\u2029sep",
    "\U0010ffff\uffff\ufffe\U0001f600",
    '\\ " / \t quotes',
    "İstanbul ß ΣΑΣ ﬁ",
]


class TestUnicode:
    """Text is stored exactly as received, with no normalisation, on every path."""

    async def test_round_trips_byte_identical(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Title and description come back with the same code points through every read."""
        for text in UNICODE_TEXTS:
            with subtests.test(text=text):
                await self.round_trip(client, text)

    async def round_trip(self, client: ApiClient, text: str) -> None:
        title = f"<{text}>"
        created = await client.create(ALICE, title=title, description=text)
        assert created["title"].encode() == title.encode()
        assert created["description"].encode() == text.encode()
        fetched = (await client.fetch(ALICE, created["id"])).data
        listed = (await client.get(tasks_path(ALICE), params={"q": text})).data
        assert fetched == created
        assert listed == [created]
        path = task_path(ALICE, created["id"])
        replaced = (await client.put(path, json={"title": title, "description": text})).data
        assert (replaced["title"], replaced["description"]) == (title, text)
        patched = (await client.patch(path, json={"description": text + text})).data
        assert patched["description"].encode() == (text + text).encode()

    async def test_searches_and_sorts_the_stored_text(self, client: ApiClient) -> None:
        """Precomposed and decomposed forms stay distinct tasks in search results."""
        composed = await client.create(ALICE, title="caf\u00e9")
        decomposed = await client.create(ALICE, title="cafe\u0301")
        assert await client.ids(ALICE, q="caf\u00e9") == [composed["id"]]
        assert await client.ids(ALICE, q="e\u0301") == [decomposed["id"]]
