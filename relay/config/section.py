"""`Section`, the base of every model of relay.yaml: frozen, strict about unknown keys.

Its own module so that the models of each part of the file (`models`,
`sources`) can share it without importing one another.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from relay.config.values import kind

__all__ = ["Section"]


class Section(BaseModel):
    """A mapping of relay.yaml (or an API body): frozen, unknown keys refused.

    A key set to null (`timeout: ~`) means its default, as if it were absent.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=False, validate_by_alias=True,
        serialize_by_alias=True, hide_input_in_errors=True, arbitrary_types_allowed=True,
        use_attribute_docstrings=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        if isinstance(data, BaseModel):
            return data
        raise ValueError(f"expected a mapping, got {kind(data)}")
