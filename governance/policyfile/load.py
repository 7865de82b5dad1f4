"""Reading and validating a policy file. Every error carries its path in the file."""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Iterable
from typing import Any

import yaml

from governance.conditions import compile_condition, leaves, parse_path
from governance.destinations import BUILT_IN, egress_params, webhook_problem
from governance.hosts import domain_name
from governance.paramschema import params_validator, schema_problems
from governance.policyfile.schema import DOCUMENT


class PolicyError(Exception):
    """A policy file that cannot be applied. `errors` lists every problem, each with its path."""

    def __init__(self, errors: list[str]):
        self.errors = errors
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
    try:
        return yaml.load(text, Loader=_StrictLoader)
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


def _structure_errors(doc: Any) -> list[str]:
    errors = []
    # The same validator as params_schema: RE2 patterns, so a name with a trailing newline is refused.
    for error in sorted(params_validator(DOCUMENT).iter_errors(doc), key=lambda e: list(map(str, e.path))):
        where = path_str(error.absolute_path)
        if error.absolute_path and error.absolute_path[-1] == "tier" and error.validator != "required":
            errors.append(f"{where}: tier must be an integer from 1 to 4, not {error.instance!r}")
        else:
            errors.append(f"{where}: {error.message}")
    return errors


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def names(self, kind: str, key: str = "name") -> dict[str, dict[str, Any]]:
        """name -> item for one list, reporting duplicates."""
        seen: dict[str, int] = {}
        items: dict[str, dict[str, Any]] = {}
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
        self.error(where, f"unknown {what} {name!r}{_suggest(name, known)}")
        return False

    def run(self) -> list[str]:
        lists = self.doc.get("lists") or {}
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


def validate(doc: Any) -> list[str]:
    """Every problem in a parsed policy document; an empty list when it can be applied."""
    if doc is None:
        return ["(document): the policy file is empty"]
    values = _Plain()  # documents built in code (the provisioning UI) get the same value checks
    try:
        values(doc)
    except PolicyError as exc:
        return exc.errors
    except RecursionError:
        return ["(document): nested too deeply"]
    if values.errors:
        return values.errors
    errors = _structure_errors(doc)
    if errors:
        return errors  # reference checks assume the structure holds
    return _length_errors(doc) + _Checker(doc).run()


def load(text: str) -> dict[str, Any]:
    """Parse and validate; raise PolicyError listing every problem."""
    doc = _plain(parse_yaml(text))
    errors = validate(doc)
    if errors:
        raise PolicyError(errors)
    return doc
