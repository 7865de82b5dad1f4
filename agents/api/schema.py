"""How the API's authentication looks in the OpenAPI schema (drf-spectacular extensions)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class _Bearer(OpenApiAuthenticationExtension):
    description = ""

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": self.description}


class AgentKeyScheme(_Bearer):
    target_class = "agents.api.auth.AgentKeyAuthentication"
    name = "agentKey"
    description = "An agent key (wak_...), created by an admin and shown once."


class SessionTokenScheme(_Bearer):
    target_class = "agents.api.auth.SessionTokenAuthentication"
    name = "sessionToken"
    description = "The short-lived session token (wst_...) returned by POST /api/v1/sessions/."


class PausedSessionTokenScheme(SessionTokenScheme):
    target_class = "agents.api.auth.PausedSessionTokenAuthentication"


class PersonalTokenScheme(_Bearer):
    target_class = "agents.api.auth.PersonalTokenAuthentication"
    name = "personalToken"
    description = "A personal API token (wpt_...) of a compliance or security user."


class OIDCTokenScheme(_Bearer):
    target_class = "agents.api.oidc_tokens.OIDCAccessTokenAuthentication"
    name = "oidcAccessToken"
    description = "A JWT access token from the identity provider, issued for WARDEN_API_AUDIENCE."


PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {},
    },
    "required": ["type", "title", "status", "detail"],
}
ERRORS = {
    "400": "Invalid request",
    "401": "Not authenticated",
    "403": "Forbidden",
    "404": "Not found",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "413": "Request too large",
    "415": "Unsupported media type",
    "429": "Rate limited",
}


def add_problem_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every operation can answer with a problem; say so in the schema."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "responses" in operation:
                for code, text in ERRORS.items():
                    operation["responses"].setdefault(code, {"description": text, "content": ref})
    return result


BLANK = {"type": "string", "maxLength": 0}


def merge_blank_strings(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular writes a blank-allowed string as `oneOf: [the string, a blank string]`.
    When the first already admits "" (no minLength), "" matches both branches, which `oneOf`
    forbids: the schema would refuse a blank the API accepts. Keep the first branch alone."""

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            branches = node.get("oneOf")
            if (
                isinstance(branches, list)
                and len(branches) == 2
                and branches[1] == BLANK
                and isinstance(branches[0], dict)
                and branches[0].get("type") == "string"
                and not branches[0].get("minLength")
            ):
                rest = {k: v for k, v in node.items() if k != "oneOf"}
                return visit({**branches[0], **rest})
            return {k: visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node

    return visit(result)  # type: ignore[no-any-return]
