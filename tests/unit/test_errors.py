"""invalid_input and first_problem: a pydantic ValidationError as a typed error naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from artdag_common.errors import InvalidInputError, first_problem, invalid_input


class Size(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(ge=2)
    sides: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _square(self) -> Size:
        if self.width == 3:
            raise ValueError("no threes")
        return self


def problem(raw: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Size.model_validate(raw)
    return caught.value


def test_the_first_problem_is_its_message_and_where_it_is() -> None:
    assert first_problem(problem({"width": 4, "sides": [1, "x"]})) == (
        "Input should be a valid integer, unable to parse string as an integer",
        ("sides", 1),
    )
    assert first_problem(problem({"width": 3})) == ("Value error, no threes", ())


@pytest.mark.parametrize(
    ("raw", "prefix", "field", "message"),
    [
        ({"width": 0}, None, "width", "Input should be greater than or equal to 2"),
        ({"width": 4, "sides": [1, "x"]}, None, "sides.1", "Input should be a valid integer"),
        ({"width": 4, "sides": [1, "x"]}, "size", "size.sides.1", "Input should be a valid integer"),
        ({"width": 3}, None, None, "Value error, no threes"),
        ({"width": 3}, "size", "size", "Value error, no threes"),
    ],
)
def test_the_error_names_the_field_under_the_prefix(
    raw: dict[str, Any], prefix: str | None, field: str | None, message: str
) -> None:
    error = invalid_input(problem(raw), prefix=prefix)
    assert isinstance(error, InvalidInputError)
    assert error.field == field
    assert error.message.startswith(message)
    assert str(error) == (f"{field}: {error.message}" if field else error.message)


def test_an_unknown_key_can_be_named_in_the_callers_words() -> None:
    assert invalid_input(problem({"width": 4, "colour": 1})).message == "Extra inputs are not permitted"
    named = invalid_input(problem({"width": 4, "colour": 1}), unknown="unknown parameter")
    assert (named.message, named.field) == ("unknown parameter", "colour")
    other = invalid_input(problem({"width": 0}), unknown="unknown parameter")
    assert other.message == "Input should be greater than or equal to 2"


def test_the_other_problems_can_be_counted() -> None:
    raw = {"width": 0, "sides": ["x", "y"], "colour": 1}
    assert invalid_input(problem(raw)).message == "Input should be greater than or equal to 2"
    counted = invalid_input(problem(raw), count_more=True)
    assert counted.message == "Input should be greater than or equal to 2 (and 3 more problems)"
    one_more = invalid_input(problem({"width": 0, "colour": 1}), count_more=True)
    assert one_more.message == "Input should be greater than or equal to 2 (and 1 more problem)"
    assert invalid_input(problem({"width": 0}), count_more=True).message == "Input should be greater than or equal to 2"
