"""`policy_apply --dry-run` reports every problem of a file in one run, each with its file, line,
column and path; lint catches what is valid but cannot be meant; the plan shows field changes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from governance.policyfile import PolicyError, load
from governance.policyfile.lint import unsatisfiable

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent

BAD = """\
version: 1
package: payments
lists: {payees: [C-1001]}
systems:
  - {name: pay, connector: demo_crm}
data_objects:
  - {name: pay.transfer, system: pay}
action_types:
  - name: pay.send
    system: pay
    mode: write
    data_objects: [pay.transfer]
    egress: {type: email, param: "recipients[*]"}
    params_schema:
      type: object
      required: [payee, amount]
      additionalProperties: false
      properties:
        payee: {type: string}
        amount: {type: number, minimum: 10, maximum: 5}
  - name: pay.look
    system: pay
    mode: read
    data_objects: [pay.transfer]
    params_schema: {type: object, properties: {id: {type: string}}}
workflows:
  - name: pay-flow
    mode: sometimes
    destinations:
      - {type: webhook, value: "www.example.com/hooks"}
    access: [{data_object: pay.transfer, mode: write}, {data_object: pay.transfer, mode: read}]
    tiers:
      - action: pay.send
        tier: 2
        conditions:
          - {param: amount, op: gt, value: 100, tier: 3}
          - {param: payeee, op: not_in, list: payees, tier: 3}
      - {action: pay.look, tier: 7}
      - {action: pay.lookup, tier: 1}
"""


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_a_dry_run_reports_every_problem_with_its_file_line_and_column(tmp_path) -> None:
    path = tmp_path / "payments.yaml"
    path.write_text(BAD)
    code, out, err = run("policy_apply", str(path), "--dry-run")
    assert code == 1 and out == ""
    lines = [line.strip() for line in err.splitlines()[1:]]
    expected = [
        f"{path}:13:34 action_types[0].egress.param: egress parameter 'recipients[*]' is not in the schema",
        f"{path}:15:7 action_types[0].params_schema: nothing can satisfy this schema: required property 'amount'",
        f"{path}:28:11 workflows[0].mode: 'sometimes' is not one of ['enforce', 'log_only']",
        f"{path}:30:32 workflows[0].destinations[0].value: 'www.example.com/hooks' is not a URL: write the scheme",
        f"{path}:37:21 workflows[0].tiers[0].conditions[1].param: parameter 'payeee' is not in the schema of 'pay.send'",
        f"{path}:38:34 workflows[0].tiers[1].tier: tier must be an integer from 1 to 4, not 7",
        f"{path}:39:18 workflows[0].tiers[2].action: unknown action 'pay.lookup' (did you mean 'pay.look'?)",
    ]
    assert len(lines) == len(expected), lines
    for wanted, line in zip(expected, lines, strict=True):
        assert line.startswith(wanted), (wanted, line)
    positions = [tuple(map(int, re.match(rf"{re.escape(str(path))}:(\d+):(\d+) ", line).groups())) for line in lines]
    assert positions == sorted(positions)  # in the order of the file


def test_yaml_errors_and_document_errors_carry_the_file_name(tmp_path) -> None:
    with pytest.raises(PolicyError) as info:
        load("version: 1\nsystems: [\n", filename="p.yaml")
    assert re.match(r"p\.yaml:\d+:\d+ ", info.value.errors[0])
    with pytest.raises(PolicyError) as info:
        load("version: 2\n", filename="p.yaml")
    assert info.value.errors == ["p.yaml:1:10 version: 1 was expected"]


def test_positions_follow_anchors_and_merge_keys() -> None:
    text = (
        "version: 1\nsystems: [{name: s, connector: c}]\ndata_objects: [{name: s.o, system: s}]\n"
        "action_types:\n  - &base {name: s.a, system: s, mode: read, data_objects: [s.o]}\n"
        "  - <<: *base\n    name: s.b\n    mode: sideways\n"
    )
    with pytest.raises(PolicyError) as info:
        load(text, filename="p.yaml")
    assert info.value.errors == ["p.yaml:8:11 action_types[1].mode: 'sideways' is not one of ['read', 'write']"]


def test_the_example_policies_are_clean(applied_policy, example_text) -> None:
    from governance.policyfile import from_database

    load(example_text, filename="policy.yaml", current=from_database())
    load((ROOT / "examples" / "policy-refunds.yaml").read_text(), filename="refunds.yaml", current=from_database())
    with pytest.raises(PolicyError, match="unknown action 'crm.issue_refund'"):
        load((ROOT / "examples" / "policy-refunds.yaml").read_text())  # alone, it names what it does not own


@pytest.mark.parametrize(
    "schema, why",
    [
        (False, "`false`"),
        ({"type": "string"}, "JSON object"),
        ({"type": "object", "properties": {"a": {"enum": []}}, "required": ["a"]}, "`enum` is empty"),
        ({"type": "object", "required": ["a"], "additionalProperties": False, "properties": {}}, "leave it out"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string", "minLength": 5, "maxLength": 2}},
                "required": ["a"],
            },
            "minLength",
        ),
        ({"not": {}}, "`not`"),
        ({"allOf": [{"type": "object"}, {"type": "array"}]}, "allOf"),
        ({"type": "object", "required": ["a", "b"], "maxProperties": 1}, "maxProperties"),
        ({"properties": {"a": {"const": 1, "type": "string"}}, "required": ["a"]}, "`const`"),
        ({"properties": {"a": {"exclusiveMinimum": 5, "maximum": 5}}, "required": ["a"]}, "exclusiveMinimum"),
    ],
)
def test_it_finds_schemas_nothing_can_satisfy(schema, why) -> None:
    found = unsatisfiable(schema, root=True)
    assert found and why in found


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object", "properties": {"a": {"enum": []}}},  # an optional parameter that can never be given
        {"type": "object", "required": ["a"], "patternProperties": {"^a$": {}}, "additionalProperties": False},
        {"type": ["object", "null"], "properties": {"n": {"minimum": 1, "maximum": 1}}},
        {"anyOf": [{"type": "array"}, {"type": "object"}]},
    ],
)
def test_it_leaves_satisfiable_schemas_alone(schema) -> None:
    assert unsatisfiable(schema, root=True) is None


def test_a_condition_on_a_nested_or_listed_parameter_is_checked_against_the_schema(example_text) -> None:
    doc = yaml.safe_load(example_text)
    mail = next(t for t in doc["workflows"][1]["tiers"] if t["action"] == "mail.send_email")
    mail["conditions"].append({"param": "recipients[*]", "op": "matches", "value": "x", "tier": 3})
    mail["conditions"].append({"param": "recipient", "op": "eq", "value": "x", "tier": 3})
    with pytest.raises(PolicyError) as info:
        load(yaml.safe_dump(doc))
    assert info.value.errors == [
        "workflows[1].tiers[5].conditions[3].param: parameter 'recipient' is not in the schema of 'mail.send_email' "
        "(a missing parameter makes the condition hold on every call)"
    ]


def test_the_plan_shows_field_level_changes(applied_policy, example_text, tmp_path) -> None:
    doc = yaml.safe_load(example_text)
    doc["workflows"][0]["tiers"][3]["tier"] = 3  # crm.add_note 2 -> 3
    doc["workflows"][0]["max_session_seconds"] = 600
    doc["workflows"][0]["access"].append({"data_object": "crm.note", "mode": "read"})
    doc["workflows"][0]["mode"] = "log_only"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, _ = run("policy_apply", str(path), "--dry-run")
    assert code == 0
    assert out.splitlines()[:6] == [
        "~ update workflow refund-triage (max_session_seconds, mode, access, tiers)",
        '    access.crm.note/read: + {"data_object": "crm.note", "mode": "read"}',
        "    max_session_seconds: 900 -> 600",
        '    mode: "enforce" -> "log_only"',
        "    tiers.crm.add_note.tier: 2 -> 3",
        "Plan: 0 to create, 1 to update, 0 to delete.",
    ]
