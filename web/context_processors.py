from typing import Any

from django.http import HttpRequest

from governance.roles import Role, roles_of


def navigation(request: HttpRequest) -> dict[str, Any]:
    roles = roles_of(getattr(request, "user", None))
    return {
        "nav": {
            "roles": sorted(roles),
            "reviewer": Role.REVIEWER in roles,
            "security": Role.SECURITY in roles,
            "auditor": bool(roles & {Role.COMPLIANCE, Role.SECURITY}),
            "admin": Role.ADMIN in roles,
            "compliance": Role.COMPLIANCE in roles,
        }
    }
