"""Reading and validating a policy file. Every error carries its path in the file."""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
from collections.abc import Iterable
from typing import Any, cast

import yaml

from governance.conditions import compile_condition, leaves, parse_path
from governance.destinations import BUILT_IN, egress_params, webhook_problem
from governance.hosts import domain_name
from governance.paramschema import params_validator, schema_problems
from governance.policyfile.lint import lint
from governance.policyfile.schema import DOCUMENT


class PolicyError(Exception):
    """A policy file that cannot be applied. `errors` lists every problem, each with its path."""

    def __init__(self, errors: list[str], changes: list[Any] | None = None):
        self.errors = errors
        self.changes = changes or []  # the plan, when it is the plan that cannot be applied
        super().__init__("\n".join(errors))


MAX_VALUES = 100_000  # a policy file is a few thousand values; more means an alias bomb
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader for policy files: mapping keys are strings and appear once (PyYAML keeps the
    last of two silently), and a date that does not exist is a marked error, not a ValueError."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # `<<: *base` merges; the keys it brings may be overridden here
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is not a string (keys are names: quote it, e.g. '{key}')",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark
            ) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


def parse_yaml(text: str) -> Any:
    return parse_yaml_nodes(text)[0]


def parse_yaml_nodes(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its root node (whose marks give each value's line and column)."""
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            return (loader.construct_document(node) if node is not None else None), node
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise PolicyError([f"{where}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"not valid YAML: {exc}"]) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a constructor PyYAML leaves unchecked
        raise PolicyError([f"not a valid policy file: {type(exc).__name__}: {exc}"]) from None


class _Plain:
    """Turns the parsed YAML into plain JSON values, refusing what the database cannot store or
    what only an attack needs: recursive aliases, alias bombs, NUL characters, lone surrogates,
    non-finite numbers, and YAML types that JSON lacks (binary, sets, pairs)."""

    def __init__(self) -> None:
        self.count = 0
        self.errors: list[str] = []
        self.open: set[int] = set()

    def __call__(self, value: Any, where: tuple[Any, ...] = ()) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise PolicyError([f"(document): more than {MAX_VALUES} values once anchors and aliases are expanded"])
        if isinstance(value, (dict, list)):
            if id(value) in self.open:
                raise PolicyError([f"{path_str(where)}: a recursive alias (a value that contains itself)"])
            self.open.add(id(value))
            try:
                if isinstance(value, dict):
                    return {k: self(v, (*where, k)) for k, v in value.items()}
                return [self(v, (*where, i)) for i, v in enumerate(value)]
            finally:
                self.open.discard(id(value))
        if isinstance(value, (dt.date, dt.datetime)):  # YAML turns 2027-05-01 into a date; the policy wants ISO
            return value.isoformat()
        if isinstance(value, str):
            if "\x00" in value:
                self.errors.append(f"{path_str(where)}: NUL characters are not allowed")
            elif any("\ud800" <= c <= "\udfff" for c in value):
                self.errors.append(f"{path_str(where)}: a lone surrogate is not text")
            return value
        if isinstance(value, float) and not math.isfinite(value):
            self.errors.append(f"{path_str(where)}: {value} is not a finite number")
            return value
        if value is None or isinstance(value, (bool, int, float)):
            return value
        self.errors.append(f"{path_str(where)}: a value of type {type(value).__name__} is not allowed")
        return None


def _plain(value: Any) -> Any:
    plain = _Plain()
    try:
        result = plain(value)
    except RecursionError:
        raise PolicyError(["(document): nested too deeply"]) from None
    if plain.errors:
        raise PolicyError(plain.errors)
    return result


def path_str(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _structure_errors(doc: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every structural problem, and the path of each (to set the broken items aside)."""
    errors, paths = [], []
    # The same validator as params_schema: RE2 patterns, so a name with a trailing newline is refused.
    for error in sorted(params_validator(DOCUMENT).iter_errors(doc), key=lambda e: list(map(str, e.path))):
        where = path_str(error.absolute_path)
        paths.append(tuple(error.absolute_path))
        if error.absolute_path and error.absolute_path[-1] == "tier" and error.validator != "required":
            errors.append(f"{where}: tier must be an integer from 1 to 4, not {error.instance!r}")
        else:
            errors.append(f"{where}: {error.message}")
    return errors, paths


_KINDS = ("lists", "systems", "data_objects", "action_types", "context_rules", "workflows", "agents")
# Settings of an item that no reference check or lint reads: a wrong one is set aside alone.
_OPTIONAL: dict[str, frozenset[str]] = {
    "lists": frozenset(),
    "systems": frozenset({"display_name", "description", "config"}),
    "data_objects": frozenset({"description", "sensitivity", "fields"}),
    "action_types": frozenset({"description"}),
    "context_rules": frozenset({"description", "handling", "clear", "persist"}),
    "workflows": frozenset({"description", "owner", "max_session_seconds", "on_reject", "mode", "out_of_scope"}),
    "agents": frozenset({"description", "owner", "status", "recertify_by"}),
}


class _Usable:
    """The document without the parts that have structural problems, so that the other checks
    still run on the rest and one run reports every problem. The part set aside is the
    innermost list item around each problem (one tier, not its whole workflow); `names` are the
    top-level items set aside (references to them are not reported again as unknown), and
    `place` turns a path in the reduced document back into the path in the file."""

    def __init__(self, doc: dict[str, Any], broken_paths: list[tuple[Any, ...]]):
        self.doc: dict[str, Any] = copy.deepcopy(doc)
        self.names: dict[str, set[str]] = {}
        self.kept: dict[tuple[Any, ...], list[int]] = {}  # list path in the file -> its indexes kept
        self.package_broken = any(p[:1] == ("package",) for p in broken_paths)
        self.dropped: list[tuple[Any, ...]] = []
        removals: dict[tuple[Any, ...], set[Any]] = {}
        for path in broken_paths:
            ints = [k for k, part in enumerate(path) if isinstance(part, int)]
            if len(path) == 3 and path[0] in _KINDS and isinstance(path[1], int) and path[2] in _OPTIONAL[path[0]]:
                self.dropped.append(path)  # a setting no other check reads: only it is set aside
            elif ints:
                removals.setdefault(tuple(path[: ints[-1]]), set()).add(path[ints[-1]])
            elif len(path) >= 2 and path[0] == "lists":
                removals.setdefault(("lists",), set()).add(path[1])
            elif len(path) >= 1 and path[0] in _KINDS:
                self.doc.pop(path[0], None)
        for kind, index, key in self.dropped:
            items = self.doc.get(kind)
            item = items[index] if isinstance(items, list) and index < len(items) else None
            if isinstance(item, dict):
                item.pop(key, None)
        for where in sorted(removals, key=len, reverse=True):  # inner lists before the lists holding them
            self._remove(where, removals[where])

    def _remove(self, where: tuple[Any, ...], bad: set[Any]) -> None:
        container: Any = self.doc
        for part in where:
            try:
                container = container[part]
            except (KeyError, IndexError, TypeError):
                return
        top = len(where) == 1 and where[0] in _KINDS
        key = "data_type" if where == ("context_rules",) else "name"
        if isinstance(container, dict):
            if top:
                self.names.setdefault(where[0], set()).update(k for k in bad if isinstance(k, str))
            for k in bad:
                container.pop(k, None)
        elif isinstance(container, list):
            if top:
                self.names.setdefault(where[0], set()).update(
                    item[key]
                    for i, item in enumerate(container)
                    if i in bad and isinstance(item, dict) and isinstance(item.get(key), str)
                )
            self.kept[where] = [i for i in range(len(container)) if i not in bad]
            container[:] = [item for i, item in enumerate(container) if i not in bad]

    def place(self, error: str) -> str:
        from governance.policyfile.positions import parse_path

        head, sep, rest = error.partition(": ")
        if not sep or not self.kept:
            return error
        parts, original = list(parse_path(head)), cast("list[Any]", [])
        for part in parts:
            if isinstance(part, int) and tuple(original) in self.kept:
                kept = self.kept[tuple(original)]
                part = kept[part] if part < len(kept) else part
            original.append(part)
        return f"{path_str(original)}: {rest}" if original else error


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    def __init__(
        self,
        doc: dict[str, Any],
        external: dict[str, dict[str, dict[str, Any]]] | None = None,
        broken: dict[str, set[str]] | None = None,
    ):
        self.doc = doc
        self.errors: list[str] = []
        # Objects of other packages in the database, which this file may refer to (by name).
        self.external = external or {}
        # Items of this file with structural problems: already reported, still known by name.
        self.broken = broken or {}

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def names(self, kind: str, key: str = "name") -> dict[str, dict[str, Any]]:
        """name -> item for one list (and the other packages' objects of that kind), reporting duplicates."""
        seen: dict[str, int] = {}
        items: dict[str, dict[str, Any]] = dict(self.external.get(kind, {}))
        for i, item in enumerate(self.doc.get(kind) or []):
            name = item.get(key)
            if name in seen:
                self.error(f"{kind}[{i}].{key}", f"duplicate {key} {name!r} (first at {kind}[{seen[name]}])")
                continue
            seen[name] = i
            items[name] = item
        return items

    def ref(self, where: str, what: str, name: str, known: dict[str, Any]) -> bool:
        if name in known:
            return True
        kind = {"data object": "data_objects", "action": "action_types"}.get(what, f"{what}s")
        if name in self.broken.get(kind, ()):
            return False  # its own problem is reported where it is defined
        self.error(where, f"unknown {what} {name!r}{_suggest(name, known)}")
        return False

    def run(self) -> list[str]:
        external_lists = {n: spec["values"] for n, spec in self.external.get("lists", {}).items()}
        lists = {**external_lists, **(self.doc.get("lists") or {})}
        systems = self.names("systems")
        data_objects = self.names("data_objects")
        actions = self.names("action_types")
        self.names("context_rules", key="data_type")
        workflows = self.names("workflows")
        self.names("agents")

        for i, obj in enumerate(self.doc.get("data_objects") or []):
            self.ref(f"data_objects[{i}].system", "system", obj["system"], systems)
        for i, action in enumerate(self.doc.get("action_types") or []):
            self.ref(f"action_types[{i}].system", "system", action["system"], systems)
            for j, name in enumerate(action["data_objects"]):
                self.ref(f"action_types[{i}].data_objects[{j}]", "data object", name, data_objects)
            for problem in schema_problems(action.get("params_schema") or {}):
                self.error(f"action_types[{i}].params_schema", problem)
            egress = action.get("egress")
            for j, (_, param) in enumerate(egress_params(egress)):
                try:
                    parse_path(param)
                except ValueError as exc:
                    self.error(
                        f"action_types[{i}].egress{f'[{j}]' if isinstance(egress, list) else ''}.param", str(exc)
                    )
        for i, workflow in enumerate(self.doc.get("workflows") or []):
            self._workflow(f"workflows[{i}]", workflow, data_objects, actions, lists)
            self._destinations(f"workflows[{i}]", workflow, actions)
        self.errors += lint(self.doc, actions)
        for i, agent in enumerate(self.doc.get("agents") or []):
            for j, name in enumerate(agent.get("workflows") or []):
                self.ref(f"agents[{i}].workflows[{j}]", "workflow", name, workflows)
            if agent.get("recertify_by"):
                try:
                    dt.date.fromisoformat(agent["recertify_by"])
                except ValueError:
                    self.error(f"agents[{i}].recertify_by", f"{agent['recertify_by']!r} is not a date (YYYY-MM-DD)")
        return self.errors

    def _workflow(
        self,
        where: str,
        workflow: dict[str, Any],
        data_objects: dict[str, Any],
        actions: dict[str, Any],
        lists: dict[str, list[Any]],
    ) -> None:
        if workflow.get("scope_template"):
            from governance.scopes import ScopeInvalid, check_template

            tiers = {t["action"] for t in workflow.get("tiers") or []}
            try:
                check_template(workflow["scope_template"], workflow_actions=tiers, where=f"{where}.scope_template")
            except ScopeInvalid as exc:
                head, _, message = str(exc).partition(": ")
                self.error(head, message)
        granted: set[tuple[str, str]] = set()
        for j, grant in enumerate(workflow.get("access") or []):
            key = (grant["data_object"], grant["mode"])
            self.ref(f"{where}.access[{j}].data_object", "data object", key[0], data_objects)
            if key in granted:
                self.error(f"{where}.access[{j}]", f"duplicate grant {key[1]} on {key[0]!r}")
            granted.add(key)
        seen: set[str] = set()
        for j, tier in enumerate(workflow.get("tiers") or []):
            at = f"{where}.tiers[{j}]"
            name = tier["action"]
            if name in seen:
                self.error(f"{at}.action", f"duplicate tier assignment for {name!r}")
            seen.add(name)
            if self.ref(f"{at}.action", "action", name, actions):
                action = actions[name]
                missing = [
                    f"{action['mode']} on {obj}"
                    for obj in action["data_objects"]
                    if (obj, action["mode"]) not in granted
                ]
                if missing:
                    self.error(
                        f"{at}.action", f"{name!r} needs {', '.join(missing)}, which the access map does not grant"
                    )
            for k, condition in enumerate(tier.get("conditions") or []):
                try:
                    compiled = compile_condition(condition, lists, action=name)
                except ValueError as exc:
                    self.error(f"{at}.conditions[{k}]", str(exc))
                    continue
                for leaf in leaves(compiled):
                    if leaf.fact_action and leaf.fact_action not in actions:
                        self.error(
                            f"{at}.conditions[{k}]",
                            f"unknown action {leaf.fact_action!r}{_suggest(leaf.fact_action, actions)}",
                        )
                if condition["tier"] <= tier["tier"]:
                    self.error(
                        f"{at}.conditions[{k}].tier",
                        f"tier {condition['tier']} does not raise the assigned tier {tier['tier']}",
                    )

    def _destinations(self, where: str, workflow: dict[str, Any], actions: dict[str, Any]) -> None:
        """Each destination has a value of its type; a type the policy names must be one an
        action sends to (a misspelt type would match nothing, in silence)."""
        declared = {kind for a in actions.values() for kind, _ in egress_params(a.get("egress"))}
        for j, destination in enumerate(workflow.get("destinations") or []):
            at, kind, value = f"{where}.destinations[{j}]", destination["type"], destination.get("value")
            if kind != "initiator" and not value:
                self.error(at, f"a {kind} destination needs a 'value'")
                continue
            if kind == "webhook" and (problem := webhook_problem(value)):
                self.error(f"{at}.value", problem)
            elif kind == "email_domain" and domain_name(value) is None:
                self.error(f"{at}.value", f"{value!r} is not a domain name (write example.com)")
            elif kind not in BUILT_IN and kind not in declared:
                self.error(
                    f"{at}.type",
                    f"no action type sends to {kind!r} destinations{_suggest(kind, declared | set(BUILT_IN))}",
                )


def _length_errors(doc: dict[str, Any]) -> list[str]:
    """Text longer than the column it goes into, read from the models so the two never drift."""
    from governance import models

    tables: dict[str, type] = {
        "systems": models.System,
        "data_objects": models.DataObject,
        "action_types": models.ActionType,
        "context_rules": models.ContextRule,
        "workflows": models.Workflow,
        "agents": models.AgentIdentity,
    }
    errors = []

    def check(where: str, model: type, field_name: str, value: Any) -> None:
        try:
            limit = model._meta.get_field(field_name).max_length  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - not a column (stored in JSON): no limit
            return
        if isinstance(value, str) and limit and len(value) > limit:
            errors.append(f"{where}: {len(value)} characters, at most {limit} ({value[:40]!r}...)")

    for name in doc.get("lists") or {}:
        check(f"lists.{name[:40]}", models.ValueList, "name", name)
    for kind, model in tables.items():
        for i, item in enumerate(doc.get(kind) or []):
            for key, value in item.items():
                check(f"{kind}[{i}].{key}", model, key, value)
    return errors


def _ownership_errors(doc: dict[str, Any], current: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    from governance.policyfile.apply import owner_conflict
    from governance.policyfile.state import KEY, package_of

    errors = []
    package = package_of(doc)
    for name in doc.get("lists") or {}:
        conflict = owner_conflict("lists", name, package, current)
        if conflict:
            errors.append(f"lists.{name}: {conflict}")
    for kind in ("systems", "data_objects", "action_types", "context_rules", "workflows", "agents"):
        for i, item in enumerate(doc.get(kind) or []):
            conflict = owner_conflict(kind, item[KEY[kind]], package, current)
            if conflict:
                errors.append(f"{kind}[{i}].{KEY[kind]}: {conflict}")
    return errors


def validate(doc: Any, *, current: dict[str, dict[str, dict[str, Any]]] | None = None) -> list[str]:
    """Every problem in a parsed policy document; an empty list when it can be applied.

    With `current` (the database's state), the file may refer to the objects of other
    packages, and naming one of them is an error (a file changes only its own package)."""
    if doc is None:
        return ["(document): the policy file is empty"]
    values = _Plain()  # documents built in code (the provisioning UI) get the same value checks
    try:
        values(doc)
    except PolicyError as exc:
        return exc.errors
    except RecursionError:
        return ["(document): nested too deeply"]
    errors, broken_paths = _structure_errors(doc)
    if not isinstance(doc, dict):
        return values.errors + errors
    # Every check runs on the items whose structure holds, so one run reports every problem.
    reduced = _Usable(doc, broken_paths)
    usable = reduced.doc
    if reduced.package_broken:
        usable.pop("package", None)
    external: dict[str, dict[str, dict[str, Any]]] = {}
    later: list[str] = []
    if current is not None:
        from governance.policyfile.state import package_of

        package = package_of(usable)
        external = {
            kind: {n: spec for n, spec in items.items() if spec.get("package", "") != package}
            for kind, items in current.items()
        }
        later += _ownership_errors(usable, current)
    later += _length_errors(usable) + _Checker(usable, external, reduced.names).run()
    return list(dict.fromkeys(values.errors + errors + [reduced.place(e) for e in later]))


def load(
    text: str, *, filename: str = "", current: dict[str, dict[str, dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """Parse and validate; raise PolicyError listing every problem. With a filename, each
    problem starts with its place: `file:line:column path: message`."""
    try:
        raw, node = parse_yaml_nodes(text)
        plain = _Plain()
        try:
            doc = plain(raw)  # stops only at what cannot be walked (a bomb, a recursive alias)
        except RecursionError:
            raise PolicyError(["(document): nested too deeply"]) from None
        # A value of a type JSON lacks became None in `doc`: its error comes from this pass.
        errors = list(dict.fromkeys(plain.errors + validate(doc, current=current)))
    except PolicyError as exc:
        if not filename:
            raise
        errors, node = exc.errors, None
    if errors:
        if filename:
            from governance.policyfile.positions import node_marks, with_positions

            errors = with_positions(errors, node_marks(node), filename)
        raise PolicyError(errors)
    return doc
