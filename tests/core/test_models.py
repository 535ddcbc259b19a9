"""The contract's validation rules, enforced by the input models before any store sees data."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tests.values import RFC3339_UTC, VALID_CHARACTERS
from todo_core import ListQuery, Task, TaskCreate, TaskPatch, TaskReplace, validate_user_id

# Every character Python's str.strip() removes, which is what the contract calls whitespace.
# It includes U+001C..U+001F, which Unicode's White_Space property does not.
WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())

MAX_OFFSET = timedelta(hours=23, minutes=59)

# Models with the full field set (title, description, completed), checked alike.
FULL_MODELS: list[type[TaskCreate | TaskReplace]] = [TaskCreate, TaskReplace]
WRITE_MODELS: list[type[BaseModel]] = [TaskCreate, TaskReplace, TaskPatch]


def error_locations(info: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in info.value.errors()]


@pytest.mark.parametrize("model", FULL_MODELS)
class TestTitle:
    def test_strips_leading_and_trailing_whitespace(self, model: type[TaskCreate]) -> None:
        """Leading and trailing str.strip() whitespace is removed, inner whitespace kept."""
        assert model(title="  buy\u3000milk \t").title == "buy\u3000milk"

    def test_strips_separators_unicode_does_not_call_whitespace(
        self, model: type[TaskCreate]
    ) -> None:
        """U+001C..U+001F (which str.strip() removes), U+3000 and U+00A0 are stripped."""
        assert model(title="\x1c\x1d\x1e\x1f\u3000\xa0x y\xa0\u3000\x1f").title == "x y"

    @pytest.mark.parametrize("character", list(WHITESPACE), ids=lambda c: f"U+{ord(c):04X}")
    def test_strips_every_python_whitespace_character(
        self, model: type[TaskCreate], character: str
    ) -> None:
        """Every character str.strip() removes is stripped from both ends of a title."""
        assert model(title=f"{character}x{character}{character}").title == "x"

    @pytest.mark.parametrize("character", ["\u200b", "\ufeff", "\x01", "\u180e"])
    def test_keeps_characters_python_does_not_strip(
        self, model: type[TaskCreate], character: str
    ) -> None:
        """Characters that str.strip() keeps are part of the title, even alone."""
        assert model(title=character).title == character

    @pytest.mark.parametrize("title", ["", " ", WHITESPACE, "\u3000\xa0\x1c"])
    def test_rejects_empty_or_whitespace_only(self, model: type[TaskCreate], title: str) -> None:
        """A title that is empty after stripping is rejected."""
        with pytest.raises(ValidationError) as info:
            model(title=title)
        assert error_locations(info) == [("title",)]

    def test_accepts_200_code_points_of_emoji(self, model: type[TaskCreate]) -> None:
        """200 four-byte code points are 200 characters, not 800: accepted unchanged."""
        title = "\U0001f600" * 200
        assert model(title=f"  {title}  ").title == title

    @pytest.mark.parametrize("title", ["\U0001f600" * 201, "a" * 201])
    def test_rejects_201_code_points(self, model: type[TaskCreate], title: str) -> None:
        """201 code points after stripping are one too many."""
        with pytest.raises(ValidationError) as info:
            model(title=title)
        assert error_locations(info) == [("title",)]

    def test_counts_length_after_stripping(self, model: type[TaskCreate]) -> None:
        """Whitespace around 200 characters does not count towards the limit."""
        assert len(model(title=" " * 50 + "a" * 200 + "\u3000" * 50).title) == 200

    def test_counts_combining_marks_as_code_points(self, model: type[TaskCreate]) -> None:
        """Lengths count code points: 100 letters with 100 combining accents are 200."""
        assert model(title="e\u0301" * 100).title == "e\u0301" * 100
        with pytest.raises(ValidationError):
            model(title="e\u0301" * 100 + "e")

    @pytest.mark.parametrize("payload", [{}, {"title": None}, {"title": 5}, {"title": b"x"}])
    def test_requires_a_string(self, model: type[TaskCreate], payload: dict[str, Any]) -> None:
        """A missing, null or non-string title is rejected."""
        with pytest.raises(ValidationError) as info:
            model.model_validate(payload)
        assert error_locations(info) == [("title",)]

    @given(title=st.text(VALID_CHARACTERS, max_size=260))
    def test_any_text_is_accepted_exactly_when_the_stripped_text_fits(
        self, model: type[TaskCreate], title: str
    ) -> None:
        """Any text without NUL or surrogates is valid iff 1-200 code points remain after
        str.strip(), and the stored title is exactly that stripped text."""
        stripped = title.strip()
        if 1 <= len(stripped) <= 200:
            assert model(title=title).title == stripped
        else:
            with pytest.raises(ValidationError):
                model(title=title)


@pytest.mark.parametrize("model", FULL_MODELS)
class TestDescription:
    def test_defaults_to_none(self, model: type[TaskCreate]) -> None:
        """An omitted description is None."""
        assert model(title="t").description is None

    @pytest.mark.parametrize("description", ["", " ", "  padded \n", "\t", "\u3000x\x1c"])
    def test_is_never_stripped(self, model: type[TaskCreate], description: str) -> None:
        """A description is kept exactly, whitespace and empty string included."""
        assert model(title="t", description=description).description == description

    def test_accepts_1000_code_points(self, model: type[TaskCreate]) -> None:
        """1000 four-byte code points are accepted."""
        description = "\U0001f600" * 1000
        assert model(title="t", description=description).description == description

    @pytest.mark.parametrize("description", ["\U0001f600" * 1001, " " * 1001])
    def test_rejects_1001_code_points(self, model: type[TaskCreate], description: str) -> None:
        """1001 code points are rejected, even if they are all whitespace."""
        with pytest.raises(ValidationError) as info:
            model(title="t", description=description)
        assert error_locations(info) == [("description",)]

    @pytest.mark.parametrize("description", [5, True, ["x"]])
    def test_rejects_non_strings(self, model: type[TaskCreate], description: object) -> None:
        """A description must be a string or null."""
        with pytest.raises(ValidationError):
            model.model_validate({"title": "t", "description": description})

    def test_explicit_null_is_none(self, model: type[TaskCreate]) -> None:
        """An explicit JSON null description is None."""
        parsed = model.model_validate_json('{"title": "t", "description": null}')
        assert parsed.description is None


@pytest.mark.parametrize("model", FULL_MODELS)
class TestCompleted:
    def test_defaults_to_false(self, model: type[TaskCreate]) -> None:
        """An omitted completed is False."""
        assert model(title="t").completed is False

    @pytest.mark.parametrize("value", [True, False])
    def test_accepts_booleans(self, model: type[TaskCreate], value: bool) -> None:
        """True and False are accepted as given."""
        assert model(title="t", completed=value).completed is value

    @pytest.mark.parametrize("value", ["true", "false", 1, 0, 1.0, None, "1", []])
    def test_rejects_non_booleans(self, model: type[TaskCreate], value: object) -> None:
        """Strings, numbers and null are not booleans, however truthy."""
        with pytest.raises(ValidationError) as info:
            model.model_validate({"title": "t", "completed": value})
        assert error_locations(info) == [("completed",)]

    @pytest.mark.parametrize("literal", ['"true"', "1", "null", "0"])
    def test_rejects_non_booleans_in_json(self, model: type[TaskCreate], literal: str) -> None:
        """A JSON body needs a JSON boolean: quoted, numeric or null values are rejected."""
        with pytest.raises(ValidationError):
            model.model_validate_json(f'{{"title": "t", "completed": {literal}}}')


class TestUnencodableText:
    @pytest.mark.parametrize("model", WRITE_MODELS)
    @pytest.mark.parametrize("field", ["title", "description"])
    @pytest.mark.parametrize("text", ["a\x00b", "\x00", "title\x00"])
    def test_rejects_nul(self, model: type[BaseModel], field: str, text: str) -> None:
        """NUL is rejected in every text field, so SQLite and PostgreSQL see the same data."""
        payload = {"title": "t", field: text}
        with pytest.raises(ValidationError) as info:
            model.model_validate(payload)
        assert error_locations(info) == [(field,)]

    @pytest.mark.parametrize("model", WRITE_MODELS)
    @pytest.mark.parametrize("field", ["title", "description"])
    @pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc00\ud800"])
    def test_rejects_lone_surrogates(self, model: type[BaseModel], field: str, text: str) -> None:
        """Lone surrogates cannot be encoded as UTF-8 and are rejected before any driver."""
        with pytest.raises(ValidationError) as info:
            model.model_validate({"title": "t", field: text})
        assert error_locations(info) == [(field,)]

    @pytest.mark.parametrize("model", WRITE_MODELS)
    def test_rejects_surrogate_escapes_in_json(self, model: type[BaseModel]) -> None:
        """A JSON body with a lone surrogate escape is rejected, not passed on."""
        with pytest.raises(ValidationError):
            model.model_validate_json('{"title": "\\ud800"}')

    def test_accepts_a_surrogate_pair_escape_in_json(self) -> None:
        """A properly paired surrogate escape is the astral character it encodes."""
        assert TaskCreate.model_validate_json('{"title": "\\ud83d\\ude00"}').title == "\U0001f600"

    @pytest.mark.parametrize("text", ["\x01\x07\x1b\x7f", "\x80\x9f", "\uffff", "\U0010ffff"])
    def test_accepts_every_other_character(self, text: str) -> None:
        """Control characters and non-characters other than NUL are allowed."""
        created = TaskCreate(title=f"a{text}b", description=text)
        assert (created.title, created.description) == (f"a{text}b", text)


class TestReadOnlyAndUnknownFields:
    @pytest.mark.parametrize("model", WRITE_MODELS)
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("id", "3f2a3d6e-5b61-4a4c-9d6b-4f0e7c1a2b3c"),
            ("user_id", "alice"),
            ("created_at", "2024-01-01T00:00:00.000000Z"),
            ("updated_at", "2024-01-01T00:00:00.000000Z"),
            ("version", 7),
            ("foo", "bar"),
            ("Title", "t"),
        ],
    )
    def test_rejects_the_field(self, model: type[BaseModel], field: str, value: object) -> None:
        """Server-owned and unknown fields are rejected, never silently dropped."""
        with pytest.raises(ValidationError) as info:
            model.model_validate({"title": "t", field: value})
        assert error_locations(info) == [(field,)]


class TestTaskReplace:
    def test_omitted_fields_take_their_defaults(self) -> None:
        """A replacement sets every field: omitted ones take their defaults."""
        assert TaskReplace(title=" t ").model_dump() == {
            "title": "t",
            "description": None,
            "completed": False,
            "due_at": None,
            "priority": "none",
            "tags": [],
            "recurrence": None,
            "time_zone": "UTC",
        }


class TestTaskPatch:
    def test_rejects_an_empty_patch(self) -> None:
        """A patch must change at least one field."""
        with pytest.raises(ValidationError):
            TaskPatch()
        with pytest.raises(ValidationError):
            TaskPatch.model_validate_json("{}")

    @pytest.mark.parametrize("field", ["title", "completed"])
    def test_rejects_null_for_required_fields(self, field: str) -> None:
        """Only description may be null: a null title or completed is rejected."""
        with pytest.raises(ValidationError):
            TaskPatch.model_validate({field: None})
        with pytest.raises(ValidationError):
            TaskPatch.model_validate_json(f'{{"{field}": null}}')

    def test_null_description_clears_it(self) -> None:
        """An explicit null description is a change to None."""
        assert TaskPatch.model_validate_json('{"description": null}').changes() == {
            "description": None
        }

    @pytest.mark.parametrize(
        ("body", "changes"),
        [
            ('{"title": " t "}', {"title": "t"}),
            ('{"completed": true}', {"completed": True}),
            ('{"completed": false}', {"completed": False}),
            ('{"description": ""}', {"description": ""}),
            (
                '{"title": "t", "description": "d", "completed": false}',
                {"title": "t", "description": "d", "completed": False},
            ),
        ],
    )
    def test_changes_are_exactly_the_given_fields(
        self, body: str, changes: dict[str, object]
    ) -> None:
        """Omitted fields are not changes; given ones are, with their validated values."""
        assert TaskPatch.model_validate_json(body).changes() == changes

    def test_omitted_description_is_not_a_change(self) -> None:
        """Omitting description differs from setting it to null."""
        assert "description" not in TaskPatch(completed=True).changes()
        assert TaskPatch(description=None).changes() == {"description": None}

    @pytest.mark.parametrize(
        "payload",
        [
            {"title": "   "},
            {"title": "a" * 201},
            {"description": "d" * 1001},
            {"completed": "true"},
            {"completed": 1},
            {"title": 5},
        ],
    )
    def test_applies_the_field_rules(self, payload: dict[str, object]) -> None:
        """Patched fields follow the same rules as in a full replacement."""
        with pytest.raises(ValidationError):
            TaskPatch.model_validate(payload)


class TestListQuery:
    def test_defaults(self) -> None:
        """No parameters mean all tasks, newest first, 100 per page, first page."""
        query = ListQuery()
        assert (query.completed, query.q, query.sort, query.limit, query.cursor) == (
            None,
            None,
            "-created_at",
            100,
            None,
        )

    @pytest.mark.parametrize("limit", [1, 2, 499, 500])
    def test_accepts_limits_from_1_to_500(self, limit: int) -> None:
        """Limits 1 to 500 are accepted."""
        assert ListQuery(limit=limit).limit == limit

    @pytest.mark.parametrize("limit", [0, -1, 501, 2**31, "5", True, 5.0, None])
    def test_rejects_other_limits(self, limit: object) -> None:
        """Out-of-range, string, boolean, float and null limits are rejected."""
        with pytest.raises(ValidationError) as info:
            ListQuery.model_validate({"limit": limit})
        assert error_locations(info) == [("limit",)]

    @pytest.mark.parametrize(
        "sort", ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
    )
    def test_accepts_the_six_sorts(self, sort: str) -> None:
        """Each of the six documented sorts is accepted."""
        assert ListQuery.model_validate({"sort": sort}).sort == sort

    @pytest.mark.parametrize(
        "sort", ["id", "-id", "+title", "TITLE", "title ", "", "completed", "description", None]
    )
    def test_rejects_other_sorts(self, sort: object) -> None:
        """Any other sort value is rejected."""
        with pytest.raises(ValidationError):
            ListQuery.model_validate({"sort": sort})

    def test_empty_q_means_no_filter(self) -> None:
        """An empty q is the same query as no q."""
        assert ListQuery(q="").q is None
        assert ListQuery(q="") == ListQuery()

    @pytest.mark.parametrize("q", ["a\x00", "\ud800"])
    def test_rejects_unencodable_q(self, q: str) -> None:
        """q containing NUL or a lone surrogate is rejected."""
        with pytest.raises(ValidationError) as info:
            ListQuery(q=q)
        assert error_locations(info) == [("q",)]

    @pytest.mark.parametrize("completed", ["true", 1, "yes"])
    def test_rejects_non_boolean_completed(self, completed: object) -> None:
        """The completed filter is a strict boolean."""
        with pytest.raises(ValidationError):
            ListQuery.model_validate({"completed": completed})

    def test_rejects_unknown_parameters(self) -> None:
        """Unknown fields are rejected by the model (the HTTP layer ignores unknown ones)."""
        with pytest.raises(ValidationError):
            ListQuery.model_validate({"offset": 10})


class TestValidateUserId:
    @pytest.mark.parametrize(
        "user_id", ["a", "alice", "A-Z.a_z@0-9", "x" * 64, "user@example.com", "..", "-"]
    )
    def test_accepts_the_pattern(self, user_id: str) -> None:
        """1-64 characters of A-Z a-z 0-9 . _ @ - are returned unchanged."""
        assert validate_user_id(user_id) == user_id

    @pytest.mark.parametrize(
        "user_id",
        ["", "x" * 65, "a/b", "é", "\x00", "a\x00", " a", "a ", "a b", "a\n", "%41", "\uff41"],
    )
    def test_rejects_anything_else(self, user_id: str) -> None:
        """Empty, 65 characters, slashes, non-ASCII, NUL and whitespace are rejected."""
        with pytest.raises(ValidationError):
            validate_user_id(user_id)

    @pytest.mark.parametrize("user_id", [None, 5, b"alice", ["alice"]])
    def test_rejects_non_strings(self, user_id: object) -> None:
        """Only str is a user id."""
        with pytest.raises(ValidationError):
            validate_user_id(user_id)  # type: ignore[arg-type]

    @given(st.from_regex(r"[A-Za-z0-9._@-]{1,64}", fullmatch=True))
    def test_accepts_any_matching_string(self, user_id: str) -> None:
        """Every string of the allowed characters and length is accepted."""
        assert validate_user_id(user_id) == user_id

    @given(st.text(max_size=70))
    def test_rejects_any_non_matching_string(self, user_id: str) -> None:
        """A string is accepted exactly when it matches the contract's pattern."""
        if re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", user_id):
            assert validate_user_id(user_id) == user_id
        else:
            with pytest.raises(ValidationError):
                validate_user_id(user_id)


def make_task(created_at: datetime, updated_at: datetime | None = None) -> Task:
    return Task(
        id=UUID("3f2a3d6e-5b61-4a4c-9d6b-4f0e7c1a2b3c"),
        user_id="alice",
        title="t",
        description=None,
        completed=False,
        due_at=None,
        priority="none",
        tags=[],
        recurrence=None,
        time_zone="UTC",
        completed_at=None,
        next_occurrence_id=None,
        created_at=created_at,
        updated_at=updated_at or created_at,
        version=1,
    )


class TestTaskSerialisation:
    def test_timestamps_are_rfc3339_utc_with_microseconds(self) -> None:
        """Timestamps serialise as UTC with six fractional digits and a Z."""
        moment = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        data = make_task(moment).model_dump(mode="json")
        assert data["created_at"] == "2024-01-02T03:04:05.000006Z"
        assert data["updated_at"] == "2024-01-02T03:04:05.000006Z"

    def test_whole_seconds_keep_six_digits(self) -> None:
        """A timestamp on a whole second still has six fractional digits."""
        data = make_task(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)).model_dump(mode="json")
        assert data["created_at"] == "2024-01-02T03:04:05.000000Z"

    def test_other_offsets_are_converted_to_utc(self) -> None:
        """An aware timestamp in another zone is written as the same instant in UTC."""
        plus_two = timezone(timedelta(hours=2))
        moment = datetime(2024, 1, 1, 1, 0, 0, 250000, tzinfo=plus_two)
        data = make_task(moment).model_dump(mode="json")
        assert data["created_at"] == "2023-12-31T23:00:00.250000Z"

    @given(
        st.datetimes(
            min_value=datetime(1970, 1, 2, tzinfo=UTC).replace(tzinfo=None),
            max_value=datetime(9999, 12, 30, tzinfo=UTC).replace(tzinfo=None),
            timezones=st.builds(timezone, st.timedeltas(-MAX_OFFSET, MAX_OFFSET)),
        )
    )
    def test_any_aware_timestamp_serialises_to_the_same_instant(self, moment: datetime) -> None:
        """Every aware datetime serialises to RFC 3339 UTC text naming the same instant."""
        text = make_task(moment).model_dump(mode="json")["created_at"]
        assert RFC3339_UTC.match(text)
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert parsed - moment == timedelta(0)

    def test_json_has_exactly_the_task_fields(self) -> None:
        """A task serialises to its fields only, with the id in lower-case 8-4-4-4-12 form."""
        data = make_task(datetime(2024, 1, 2, tzinfo=UTC)).model_dump(mode="json")
        assert set(data) == {
            "id",
            "user_id",
            "title",
            "description",
            "completed",
            "due_at",
            "priority",
            "tags",
            "recurrence",
            "time_zone",
            "completed_at",
            "next_occurrence_id",
            "created_at",
            "updated_at",
            "version",
        }
        assert data["id"] == "3f2a3d6e-5b61-4a4c-9d6b-4f0e7c1a2b3c"

    def test_is_frozen(self) -> None:
        """A returned task cannot be changed in place."""
        task = make_task(datetime(2024, 1, 2, tzinfo=UTC))
        with pytest.raises(ValidationError):
            task.title = "other"  # type: ignore[misc]
