from tests.api.conftest import agent_key, api, compliance_token, one_rate_window, start  # noqa: F401
