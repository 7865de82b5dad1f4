"""A blank-allowed string is one string schema, not a oneOf that "" would match twice (the
schema would then refuse a blank tool_use_id the API accepts)."""

from __future__ import annotations

import jsonschema
from drf_spectacular.generators import SchemaGenerator


def test_a_blank_tool_use_id_satisfies_the_published_schema() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    field = schema["components"]["schemas"]["AuthorizeRequestRequest"]["properties"]["tool_use_id"]
    assert "oneOf" not in field
    jsonschema.validate("", field)
    jsonschema.validate("toolu_01", field)
