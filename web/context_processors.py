from typing import Any

from django.http import HttpRequest

from governance.roles import Capability, capabilities_of, roles_of


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    may = capabilities_of(user)
    return {
        "nav": {
            "roles": sorted(roles_of(user)),
            "reviewer": Capability.REVIEW in may,
            "security": Capability.SEE_ALERTS in may,
            "auditor": Capability.AUDIT in may,
            "admin": Capability.PROVISION in may,
            "compliance": Capability.RECERTIFY in may,
        }
    }
