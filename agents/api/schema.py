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


class PersonalTokenScheme(_Bearer):
    target_class = "agents.api.auth.PersonalTokenAuthentication"
    name = "personalToken"
    description = "A personal API token (wpt_...) of a compliance or security user."


class OIDCTokenScheme(_Bearer):
    target_class = "agents.api.auth.OIDCAccessTokenAuthentication"
    name = "oidcAccessToken"
    description = "An access token from the identity provider."
