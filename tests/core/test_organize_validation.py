"""The rules of the organizing fields, enforced by the input models before any store
sees data: due_at through the model (the parser's own cases are its unit tests'),
priority, tags, recurrence, time_zone, and the read-only fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tests.values import TAG_LISTS, VALID_CHARACTERS, normalized_tags
from todo_core import ListQuery, TaskCreate, TaskPatch, TaskReplace

FULL_MODELS: list[type[TaskCreate | TaskReplace]] = [TaskCreate, TaskReplace]
WRITE_MODELS: list[type[BaseModel]] = [TaskCreate, TaskReplace, TaskPatch]
DUE = "2026-12-24T18:00:00Z"


def refused_at(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[int | str, ...]]:
    """Where ``model`` refuses ``data`` (which needs a title for the full models); a
    patch refuses a null for the whole patch, naming the field in its context."""
    if model is not TaskPatch:
        data = {"title": "t"} | data
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [
        (error["ctx"]["field"],) if error["type"] == "patch_null" else error["loc"]
        for error in info.value.errors()
    ]


@pytest.mark.parametrize("model", WRITE_MODELS)
class TestDueAt:
    @pytest.mark.parametrize(
        ("text", "stored"),
        [
            ("2026-12-24T18:00:00Z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
            ("2026-12-24T19:00:00.5+01:00", datetime(2026, 12, 24, 18, 0, 0, 500000, tzinfo=UTC)),
            ("2026-12-24t18:00:00z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
            ("2026-12-24T18:00:00.123456Z", datetime(2026, 12, 24, 18, 0, 0, 123456, tzinfo=UTC)),
            ("2026-12-24T18:00:00.1-00:30", datetime(2026, 12, 24, 18, 30, 0, 100000, tzinfo=UTC)),
            ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
            ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ],
    )
    def test_stored_in_utc(self, model: type[BaseModel], text: str, stored: datetime) -> None:
        """Any offset, T and Z in either case, 0-6 fractional digits: the same instant
        in UTC."""
        due_at = model.model_validate({"title": "t", "due_at": text}).due_at  # type: ignore[attr-defined]
        assert due_at == stored
        assert due_at.utcoffset() == timedelta(0)

    @pytest.mark.parametrize(
        "text",
        [
            "2026-12-24T18:00:00.1234567Z",  # seven fractional digits
            "2026-12-24",  # a date without a time
            "2026-12-24T18:00:00",  # no offset
            "2026-12-24T18:00Z",  # no seconds
            "2026-12-31T23:59:60Z",  # a leap second
            "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
            "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
            "",
            "tomorrow",
        ],
    )
    def test_refused(self, model: type[BaseModel], text: str) -> None:
        assert refused_at(model, {"due_at": text}) == [("due_at",)]

    @pytest.mark.parametrize("value", [1767225600, True, datetime(2026, 1, 1)])  # noqa: DTZ001
    def test_not_a_time(self, model: type[BaseModel], value: object) -> None:
        """A number, a boolean, or a datetime without an offset is no due time."""
        assert refused_at(model, {"due_at": value}) == [("due_at",)]

    def test_aware_datetime_converted(self, model: type[BaseModel]) -> None:
        moment = datetime(2026, 12, 24, 19, tzinfo=timezone(timedelta(hours=1)))
        due_at = model.model_validate({"title": "t", "due_at": moment}).due_at  # type: ignore[attr-defined]
        assert (due_at, due_at.utcoffset()) == (
            datetime(2026, 12, 24, 18, tzinfo=UTC),
            timedelta(0),
        )


@pytest.mark.parametrize("model", WRITE_MODELS)
class TestPriorityRecurrenceTimeZone:
    @pytest.mark.parametrize("priority", ["none", "low", "medium", "high"])
    def test_priorities(self, model: type[BaseModel], priority: str) -> None:
        assert model.model_validate({"title": "t", "priority": priority}).priority == priority  # type: ignore[attr-defined]

    @pytest.mark.parametrize("priority", ["High", "", "urgent", 3, None])
    def test_other_priorities(self, model: type[BaseModel], priority: object) -> None:
        assert refused_at(model, {"priority": priority}) == [("priority",)]

    @pytest.mark.parametrize("recurrence", ["Daily", "hourly", "", 1])
    def test_other_recurrences(self, model: type[BaseModel], recurrence: object) -> None:
        assert refused_at(model, {"recurrence": recurrence, "due_at": DUE}) == [("recurrence",)]

    @pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
    def test_time_zones(self, model: type[BaseModel], zone: str) -> None:
        assert model.model_validate({"title": "t", "time_zone": zone}).time_zone == zone  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        "zone",
        ["localtime", "europe/paris", "Mars/Olympus", "", "/etc/passwd", "../UTC", "x" * 65, None],
    )
    def test_other_time_zones(self, model: type[BaseModel], zone: object) -> None:
        """The server's own zone, paths, unknown names and wrong case are refused."""
        assert refused_at(model, {"time_zone": zone}) == [("time_zone",)]

    @pytest.mark.parametrize("field", ["completed_at", "next_occurrence_id"])
    def test_read_only_fields(self, model: type[BaseModel], field: str) -> None:
        assert refused_at(model, {field: None}) == [(field,)]


class TestRecurrenceNeedsDueAt:
    @pytest.mark.parametrize("model", FULL_MODELS)
    def test_full_models(self, model: type[TaskCreate]) -> None:
        with pytest.raises(ValidationError) as info:
            model(title="t", recurrence="daily")
        [error] = info.value.errors()
        assert error["type"] == "recurrence_without_due"
        assert model(title="t", recurrence="daily", due_at=DUE).recurrence == "daily"

    def test_patch_setting_both(self) -> None:
        """A patch that itself gives a recurrence and clears due_at is refused at once;
        one that only names one of them is decided against the stored task."""
        with pytest.raises(ValidationError):
            TaskPatch(recurrence="weekly", due_at=None)
        assert TaskPatch(recurrence="weekly").recurrence == "weekly"
        assert TaskPatch(due_at=None).model_fields_set == {"due_at"}
        assert TaskPatch(recurrence=None, due_at=None).changes() == {
            "recurrence": None,
            "due_at": None,
        }

    @pytest.mark.parametrize("field", ["priority", "tags", "time_zone"])
    def test_patch_nulls(self, field: str) -> None:
        """Only due_at and recurrence (and description) may be null in a patch."""
        with pytest.raises(ValidationError):
            TaskPatch.model_validate({field: None})


@pytest.mark.parametrize("model", WRITE_MODELS)
class TestTags:
    def test_normalised(self, model: type[BaseModel]) -> None:
        tags = [" Home ", "WORK", "home", "\tÉté", "work "]
        assert model.model_validate({"title": "t", "tags": tags}).tags == ["home", "work", "été"]  # type: ignore[attr-defined]

    def test_twenty_items_as_sent(self, model: type[BaseModel]) -> None:
        """At most 20 items as sent, even when repeats would leave fewer."""
        twenty = [f"t{number}" for number in range(20)]
        assert model.model_validate({"title": "t", "tags": twenty}).tags == twenty  # type: ignore[attr-defined]
        assert refused_at(model, {"tags": [*twenty, "t0"]}) == [("tags",)]
        assert refused_at(model, {"tags": ["same"] * 21}) == [("tags",)]

    def test_forty_code_points_after_normalisation(self, model: type[BaseModel]) -> None:
        forty = "é" * 39 + "😀"
        padded = model.model_validate({"title": "t", "tags": [f"  {forty.upper()}\t"]})
        assert padded.tags == [forty]  # type: ignore[attr-defined]
        assert refused_at(model, {"tags": ["ok", "x" * 41]}) == [("tags", 1)]

    def test_lower_casing_that_grows(self, model: type[BaseModel]) -> None:
        """ "İ".lower() is two code points: 20 of them fit, 21 do not."""
        assert len("İ".lower()) == 2
        fits = model.model_validate({"title": "t", "tags": ["İ" * 20]})
        assert fits.tags == ["i\u0307" * 20]  # type: ignore[attr-defined]
        assert refused_at(model, {"tags": ["İ" * 21]}) == [("tags", 0)]

    @pytest.mark.parametrize("tag", ["", "  \t", "a,b", ",", "a\x00", "a\ud800", 7, None])
    def test_refused(self, model: type[BaseModel], tag: object) -> None:
        assert refused_at(model, {"tags": ["ok", tag]}) == [("tags", 1)]

    @pytest.mark.parametrize("tags", ["home", None, {"home": 1}])
    def test_not_a_list(self, model: type[BaseModel], tags: object) -> None:
        assert refused_at(model, {"tags": tags})[0][0] == "tags"


class TestTagsProperty:
    @given(TAG_LISTS)
    def test_as_the_contract_normalises(self, tags: list[str]) -> None:
        assert TaskCreate(title="t", tags=tags).tags == normalized_tags(tags)

    @given(st.lists(st.text(VALID_CHARACTERS, min_size=1, max_size=45), max_size=20))
    def test_any_text(self, tags: list[str]) -> None:
        """Any tags are either stored normalised, or refused for a rule they break."""
        normalised = [tag.strip().lower() for tag in tags]
        valid = all(1 <= len(tag) <= 40 and "," not in tag for tag in normalised)
        if valid:
            assert TaskCreate(title="t", tags=tags).tags == list(dict.fromkeys(normalised))
        else:
            with pytest.raises(ValidationError):
                TaskCreate(title="t", tags=tags)


class TestListQueryFilters:
    def test_priority_held_in_rank_order(self) -> None:
        """Two spellings of the same levels are the same query."""
        assert ListQuery(priority=("high", "low")) == ListQuery(priority=("low", "high"))
        assert ListQuery(priority=("high", "none", "medium")).priority == ("none", "medium", "high")

    @pytest.mark.parametrize("priority", [(), ("high", "high"), ("urgent",), "high"])
    def test_other_priorities(self, priority: object) -> None:
        with pytest.raises(ValidationError):
            ListQuery.model_validate({"priority": priority})

    def test_tags_normalised_and_sorted(self) -> None:
        assert ListQuery(tag=(" Work", "home", "WORK")).tag == ("home", "work")
        assert ListQuery(tag=("b", "a")) == ListQuery(tag=("a", "b"))

    @pytest.mark.parametrize("tag", [(), ("a,b",), ("",), tuple(f"t{n}" for n in range(21))])
    def test_other_tags(self, tag: tuple[str, ...]) -> None:
        with pytest.raises(ValidationError):
            ListQuery(tag=tag)

    def test_due_bounds_parsed_like_due_at(self) -> None:
        query = ListQuery.model_validate(
            {"due_min": "2026-12-24T19:00:00+01:00", "due_max": "2026-12-25t00:00:00z"}
        )
        assert (query.due_min, query.due_max) == (
            datetime(2026, 12, 24, 18, tzinfo=UTC),
            datetime(2026, 12, 25, tzinfo=UTC),
        )
        with pytest.raises(ValidationError):
            ListQuery.model_validate({"due_min": "2026-12-24"})
