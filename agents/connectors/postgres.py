"""A PostgreSQL connector with per-session database credentials (Vault's database secrets
engine, done for Warden's access map).

When a session starts, each PostgreSQL system its workflow reaches gets a login role made
for that session only: VALID UNTIL the session's expiry, with exactly the privileges of the
access map (read -> SELECT on the mapped table or columns, write -> INSERT and UPDATE). The
connector runs the session's queries as that role, so a query that slipped past the gateway
is still refused by PostgreSQL itself. At termination the role is dropped; the sweeper reaps
roles that a crashed process left behind.

System.config:
    tables:  {data_object: {table: "schema.table", columns: [..] (optional; all when absent)}}
    actions: {action: {op: select|insert|update, data_object: .., key: [cols] (update), set: [cols] (update)}}
The system's ServiceCredential holds the admin DSN (a role with CREATEROLE and the grant
option on the mapped tables); it is rotated like any other credential.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any, cast

import psycopg
from django.utils import timezone
from psycopg import sql
from psycopg.types.json import Jsonb

from agents.connectors.base import ActionDescription, Connector, ConnectorError, register

if TYPE_CHECKING:
    from agents.models import AgentSession
    from governance.models import ServiceCredential, System

ROLE_PREFIX = "warden_s_"
LOG_TABLE = "warden_connector_log"


def role_name(session_id: Any) -> str:
    return ROLE_PREFIX + str(session_id).replace("-", "")[:24]


def _table(identifier: str) -> sql.Composable:
    return sql.Identifier(*identifier.split(".", 1))


def _admin(credential: ServiceCredential) -> psycopg.Connection:
    try:
        return psycopg.connect(credential.reveal(), autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise ConnectorError(f"postgres: cannot connect with the admin credential ({type(exc).__name__})") from None


def _dsn_for_role(admin_dsn: str, role: str, password: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    info.update(user=role, password=password)
    return psycopg.conninfo.make_conninfo("", **info)


def _credential(system: System) -> ServiceCredential:
    credential = system.credentials.order_by("name").first()
    if credential is None or not credential.has_secret:
        raise ConnectorError(f"postgres: system {system.name!r} has no admin credential")
    return credential


def _privileges(session: AgentSession, system: System) -> list[sql.Composed]:
    tables = system.config.get("tables", {})
    statements: list[sql.Composed] = []
    role = sql.Identifier(role_name(session.pk))
    for obj, mode in session.workflow.grants.filter(data_object__system=system).values_list(
        "data_object__name", "mode"
    ):
        spec = tables.get(obj)
        if not spec:
            continue
        table = _table(spec["table"])
        if mode == "read":
            columns = spec.get("columns")
            cols = sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, columns))) if columns else sql.SQL("")
            statements.append(sql.SQL("GRANT SELECT {} ON {} TO {}").format(cols, table, role))
        else:
            statements.append(sql.SQL("GRANT INSERT, UPDATE ON {} TO {}").format(table, role))
    return statements


def provision_session_roles(session: AgentSession) -> list[str]:
    """Create the session's roles on every PostgreSQL system its workflow reaches."""
    from agents.models import SessionDatabaseRole
    from governance import crypto
    from governance.models import System

    made = []
    systems = System.objects.filter(
        connector=PostgresConnector.id, data_objects__grants__workflow=session.workflow
    ).distinct()
    for system in systems:
        role, password = role_name(session.pk), secrets.token_urlsafe(24)
        credential = _credential(system)
        with _admin(credential) as conn:
            database = conn.info.dbname
            schemas = {
                spec["table"].split(".", 1)[0]
                for spec in system.config.get("tables", {}).values()
                if "." in spec["table"]
            }
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOINHERIT CONNECTION LIMIT 5 PASSWORD {} VALID UNTIL {}").format(
                        sql.Identifier(role), sql.Literal(password), sql.Literal(session.expires_at.isoformat())
                    )
                )
                conn.execute(
                    sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role))
                )
                for schema in sorted(schemas or {"public"}):
                    conn.execute(
                        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role))
                    )
                for statement in _privileges(session, system):
                    conn.execute(statement)
                # The connector's idempotency log: technical, not data, and append-only for the role.
                conn.execute(
                    sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(sql.Identifier(LOG_TABLE), sql.Identifier(role))
                )
        SessionDatabaseRole.objects.create(
            session=session,
            system=system.name,
            role=role,
            password_encrypted=crypto.encrypt(password),
            valid_until=session.expires_at,
        )
        made.append(role)
    return made


def _drop(conn: psycopg.Connection, role: str) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    if exists:
        with conn.transaction():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def drop_session_roles(session: AgentSession) -> None:
    from agents.models import SessionDatabaseRole
    from governance.models import System

    for record in SessionDatabaseRole.objects.filter(session=session, dropped_at__isnull=True):
        system = System.objects.get(name=record.system)
        with _admin(_credential(system)) as conn:
            _drop(conn, record.role)
        SessionDatabaseRole.objects.filter(pk=record.pk).update(dropped_at=timezone.now())


def role_can_log_in(record: Any) -> bool:
    """Try to log in as a session role; False when PostgreSQL refuses (or the role is gone)."""
    from governance import crypto
    from governance.models import System

    system = System.objects.get(name=record.system)
    dsn = _dsn_for_role(_credential(system).reveal(), record.role, crypto.decrypt(record.password_encrypted))
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error:
        return False
    return True


def reap_orphan_roles() -> int:
    """Drop session roles whose session is over or unknown (a crashed process left them)."""
    from agents.models import AgentSession, SessionDatabaseRole
    from governance.models import System

    live = {
        role_name(pk) for pk in AgentSession.objects.filter(status__in=AgentSession.LIVE).values_list("pk", flat=True)
    }
    reaped = 0
    for system in System.objects.filter(connector=PostgresConnector.id):
        try:
            conn = _admin(_credential(system))
        except ConnectorError:
            continue
        with conn:
            roles = [
                r
                for (r,) in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", [ROLE_PREFIX.replace("_", r"\_") + "%"]
                )
            ]
            for role in roles:
                if role not in live:
                    _drop(conn, role)
                    SessionDatabaseRole.objects.filter(role=role, dropped_at__isnull=True).update(
                        dropped_at=timezone.now()
                    )
                    reaped += 1
    return reaped


class PostgresConnector(Connector):
    id = "postgres"

    def describe(self) -> list[ActionDescription]:
        return []  # actions are configured per system (System.config["actions"])

    def execute(
        self,
        action: str,
        params: dict[str, Any],
        credential: ServiceCredential | None,
        idempotency_key: str,
        *,
        session: AgentSession | None = None,
    ) -> dict[str, Any]:
        from agents.models import SessionDatabaseRole
        from governance import crypto

        if session is None or credential is None:
            raise ConnectorError("postgres: queries run only inside a session, with its own database role")
        system = credential.system
        spec = system.config.get("actions", {}).get(action)
        if spec is None:
            raise ConnectorError(f"postgres: action {action!r} is not configured for system {system.name!r}")
        record = SessionDatabaseRole.objects.filter(
            session=session, system=system.name, dropped_at__isnull=True
        ).first()
        if record is None:
            raise ConnectorError("postgres: this session has no database role")
        dsn = _dsn_for_role(credential.reveal(), record.role, crypto.decrypt(record.password_encrypted))
        table = _table(system.config["tables"][spec["data_object"]]["table"])
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                return run_statement(conn, spec, table, params, idempotency_key)
        except psycopg.errors.InsufficientPrivilege:
            raise ConnectorError("postgres: permission denied by the database for this session's role") from None
        except psycopg.Error as exc:
            raise ConnectorError(f"postgres: the query failed ({type(exc).__name__})") from None

    def create_secret(self, credential: ServiceCredential) -> str:
        """A new password for the admin role; the DSN changes, the role stays."""
        info = psycopg.conninfo.conninfo_to_dict(credential.reveal())
        password = secrets.token_urlsafe(24)
        user = cast(str, info["user"])  # parsed from the DSN's text, so a str
        with _admin(credential) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
        info["password"] = password
        return psycopg.conninfo.make_conninfo("", **info)

    def verify_secret(self, credential: ServiceCredential, secret: str) -> None:
        try:
            psycopg.connect(secret, connect_timeout=5).close()
        except psycopg.Error as exc:
            raise ConnectorError(f"postgres: the new admin password does not work ({type(exc).__name__})") from None

    def revoke_secret(self, credential: ServiceCredential, secret: str) -> None:
        pass  # a password change already retired the old password


def run_statement(
    conn: psycopg.Connection, spec: dict[str, Any], table: sql.Composable, params: dict[str, Any], idempotency_key: str
) -> dict[str, Any]:
    op, data_object = spec["op"], spec["data_object"]
    if op == "select":
        filters = {k: v for k, v in params.items() if k != "limit"}
        where = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in filters)
        query = sql.SQL("SELECT * FROM {}{} LIMIT {}").format(
            table, sql.SQL(" WHERE ") + where if filters else sql.SQL(""), sql.Literal(int(params.get("limit", 50)))
        )
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            rows = cursor.execute(query, list(filters.values())).fetchall()
        return {"data_object": data_object, "data": json.loads(json.dumps(rows, default=str))}
    with conn.transaction():
        done = conn.execute(
            sql.SQL("SELECT response FROM {} WHERE key = %s").format(sql.Identifier(LOG_TABLE)), [idempotency_key]
        ).fetchone()
        if done:
            return done[0]
        if op == "insert":
            cols = list(params)
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table, sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(sql.Placeholder() * len(cols))
            )
            count = conn.execute(query, [params[c] for c in cols]).rowcount
        elif op == "update":
            keys, sets = spec.get("key", ["id"]), [c for c in spec.get("set", []) if c in params]
            query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
                table,
                sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in sets),
                sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in keys),
            )
            count = conn.execute(query, [params[c] for c in sets] + [params[k] for k in keys]).rowcount
        else:
            raise ConnectorError(f"postgres: unknown operation {op!r}")
        response = {"data_object": data_object, "data": {"rows": count}}
        conn.execute(
            sql.SQL("INSERT INTO {} (key, response) VALUES (%s, %s)").format(sql.Identifier(LOG_TABLE)),
            [idempotency_key, Jsonb(response)],
        )
    return response


register(PostgresConnector())
