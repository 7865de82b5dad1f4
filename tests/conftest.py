from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, transaction

from governance.policyfile import apply_policy, from_document, load

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICY = ROOT / "examples" / "policy.yaml"


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if on_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_POLICY.read_text()


@pytest.fixture
def example_state(example_text: str) -> dict:
    return from_document(load(example_text))


@pytest.fixture
def applied_policy(db: None, example_state: dict) -> dict:
    apply_policy(example_state, actor="test:setup")
    return example_state


@contextmanager
def _bypass_append_only() -> Iterator[None]:
    """Tests play the attacker with direct SQL; on PostgreSQL that means disabling the trigger."""
    with connection.cursor() as cursor:
        if on_postgres():
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        finally:
            if on_postgres():
                cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture(autouse=True)
def _checkpoint_dir(settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test its own checkpoint directory: the directory outlives the test database, and
    checkpoints of another test's log would read as a cut-off tail."""
    folder = tmp_path_factory.mktemp("checkpoints")
    settings.WARDEN_CHECKPOINT_DIR = str(folder)
    return folder


@pytest.fixture
def tamper() -> Callable[[str, list], None]:
    def run(sql: str, params: list | None = None) -> None:
        with transaction.atomic(), _bypass_append_only(), connection.cursor() as cursor:
            cursor.execute(sql, params or [])

    return run


@pytest.fixture
def demo(applied_policy: dict) -> dict:
    """The example policy plus the demo systems' records and API keys."""
    from demo_systems.seed import seed

    seed()
    return applied_policy


@pytest.fixture
def model_server(settings):
    """The offline model server over real HTTP, playing examples/scripts/."""
    from agents.model_server import serve

    server = serve(ROOT / "examples" / "scripts")
    settings.ANTHROPIC_BASE_URL = "http://%s:%s" % server.server_address[:2]
    settings.WARDEN_MODEL_MAX_RETRIES = 0
    yield server
    server.shutdown()
    server.server_close()
