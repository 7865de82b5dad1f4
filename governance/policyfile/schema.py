"""The shape of a policy file, as a JSON schema. Reference checks live in validate.py."""

from __future__ import annotations

from governance.models import NAME_RE

NAME = {"type": "string", "pattern": NAME_RE, "maxLength": 128}
TEXT = {"type": "string"}
TIER = {"type": "integer", "minimum": 1, "maximum": 4}
SENSITIVITIES = ["public", "internal", "confidential", "restricted"]
EGRESS_TYPES = ("email", "webhook", "ticket_queue")  # the built-in ones; a policy may name others (iban, ...)
DESTINATION_TYPES = ("email", "email_domain", "webhook", "ticket_queue", "initiator")
TYPE_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}


def _obj(required: list[str], **properties: object) -> dict[str, object]:
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


def _list_of(item: dict[str, object]) -> dict[str, object]:
    return {"type": "array", "items": item}


# A condition is a comparison or an all/any/not block; governance.conditions checks its parts
# (with messages that name the place inside the block), so the shape here is only the outside.
CONDITION: dict[str, object] = {"type": "object", "required": ["tier"], "properties": {"tier": TIER}}
EGRESS = _obj(["type", "param"], type=TYPE_NAME, param={"type": "string", "minLength": 1})

SCOPE_CONSTRAINT = _obj(["param", "op"], param={"type": "string", "minLength": 1}, op=TEXT, value={}, bind=NAME)
SCOPE_TEMPLATE = _obj(
    [],
    bind={"type": "object", "propertyNames": NAME, "additionalProperties": _obj(["pattern"], pattern=TEXT)},
    actions={**_list_of(NAME), "minItems": 1},
    constraints={"type": "object", "propertyNames": NAME, "additionalProperties": _list_of(SCOPE_CONSTRAINT)},
)

DOCUMENT = _obj(
    [],
    version={"const": 1},
    package={**NAME, "maxLength": 64},
    lists={
        "type": "object",
        "propertyNames": NAME,
        "additionalProperties": _list_of({"type": ["string", "number", "boolean"]}),
    },
    systems=_list_of(
        _obj(
            ["name", "connector"],
            name=NAME,
            display_name=TEXT,
            connector=NAME,
            description=TEXT,
            config={"type": "object"},
        )
    ),
    data_objects=_list_of(
        _obj(
            ["name", "system"],
            name=NAME,
            system=NAME,
            description=TEXT,
            sensitivity={"enum": SENSITIVITIES},
            fields={"type": "object", "additionalProperties": NAME},
        )
    ),
    action_types=_list_of(
        _obj(
            ["name", "system", "mode", "data_objects"],
            name=NAME,
            system=NAME,
            mode={"enum": ["read", "write"]},
            description=TEXT,
            data_objects={**_list_of(NAME), "minItems": 1},
            params_schema={"type": "object"},
            egress={"oneOf": [EGRESS, {**_list_of(EGRESS), "minItems": 1}]},
        )
    ),
    context_rules=_list_of(
        _obj(
            ["data_type"],
            data_type=NAME,
            description=TEXT,
            handling={"enum": ["full", "redacted", "summarized", "never"]},
            clear={"enum": ["step", "session"]},
            persist={"type": "boolean"},
        )
    ),
    workflows=_list_of(
        _obj(
            ["name"],
            name=NAME,
            description=TEXT,
            owner=TEXT,
            max_session_seconds={"type": "integer", "minimum": 1, "maximum": 86400},
            on_reject={"enum": ["handoff", "continue", "end"]},
            mode={"enum": ["enforce", "log_only"]},
            out_of_scope={"enum": ["refuse", 3]},
            scope_template=SCOPE_TEMPLATE,
            unlisted_destinations={"enum": ["refuse", 2, 3]},
            destinations=_list_of(
                _obj(
                    ["type"],
                    type=TYPE_NAME,
                    value={"type": "string", "minLength": 1},
                    clearance={"enum": SENSITIVITIES},
                    case={"enum": ["sensitive", "insensitive"]},
                )
            ),
            access=_list_of(_obj(["data_object", "mode"], data_object=NAME, mode={"enum": ["read", "write"]})),
            tiers=_list_of(
                _obj(
                    ["action", "tier"],
                    action=NAME,
                    tier=TIER,
                    quorum={"type": "integer", "minimum": 1, "maximum": 10},
                    conditions=_list_of(CONDITION),
                )
            ),
        )
    ),
    agents=_list_of(
        _obj(
            ["name", "owner"],
            name=NAME,
            description=TEXT,
            owner={"type": "string", "minLength": 1},
            status={"enum": ["active", "suspended", "deprovisioned"]},
            recertify_by={"type": ["string", "null"]},
            workflows=_list_of(NAME),
        )
    ),
)
