from tests.api.conftest import agent_key, api, compliance_token, start  # noqa: F401
