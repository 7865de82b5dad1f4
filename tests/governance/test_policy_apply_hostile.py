"""Hardening item 13: unusual YAML, invalid dates and over-long names give `policy_apply` a clear
error and exit code 1, never a traceback, and nothing is written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from governance.models import AgentIdentity, System

pytestmark = pytest.mark.django_db
EXAMPLE = (Path(__file__).resolve().parent.parent.parent / "examples" / "policy.yaml").read_text()
AGENT = """
  - name: {name}
    owner: {owner}
    recertify_by: {date}
    workflows: [refund-triage]
"""


def with_agent(name: str = "extra-bot", owner: str = "ops@example.com", date: str = "2027-05-01") -> str:
    return EXAMPLE + AGENT.format(name=name, owner=owner, date=date)


def with_top(text: str) -> str:
    return EXAMPLE + "\n" + text + "\n"


def apply(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("policy_apply", str(path), stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), err.getvalue()
    return 0, out.getvalue()


def test_the_example_applies(tmp_path) -> None:
    assert apply(tmp_path, EXAMPLE)[0] == 0


CASES = {
    "an integer key": (with_top("1: x"), "key 1 is not a string"),
    "a null key": (with_top("null: x"), "key None is not a string"),
    "a boolean key": (with_top("true: x"), "key True is not a string"),
    "a YAML 1.1 boolean key": (EXAMPLE.replace("system: crm\n", "system: crm\n    on: x\n", 1), "key True"),
    "a nested integer key": (EXAMPLE.replace("fields: {name: pii.name,", "fields: {1: pii.name,", 1), "key 1"),
    "a key in a system's config": (
        EXAMPLE.replace("config: {record_url:", "config: {2: x, record_url:", 1),
        "key 2",
    ),
    "a key in a params schema": (
        EXAMPLE.replace("      properties:\n", "      properties:\n        3: {type: string}\n", 1),
        "key 3",
    ),
    "a mapping as a key": (with_top("? {a: 1}\n: x"), "not a string"),
    "a list as a key": (with_top("? [a, b]\n: x"), "is not a string"),
    "a duplicate key": (with_top("version: 1"), "duplicate key 'version'"),
    "a recursive alias": (with_top("extra: &loop [*loop]"), "recursive"),
    "an alias bomb": (
        EXAMPLE.replace(
            "lists:\n",
            "lists:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)),
            1,
        ),
        "aliases",
    ),
    "an impossible date": (with_agent(date="2027-02-30"), "2027-02-30"),
    "a year-zero date": (with_agent(date="0000-01-01"), "0000-01-01"),
    "a date that is text": (with_agent(date="'next tuesday'"), "not a date"),
    "a date with a time": (with_agent(date="2027-05-01T10:00:00"), "not a date"),
    "an over-long agent name": (with_agent(name="a" * 200), "is too long"),
    "an over-long system name": (EXAMPLE.replace("- name: crm\n", f"- name: {'c' * 100}\n", 1), "at most 64"),
    "an over-long list name": (EXAMPLE.replace("company_domains:", f"{'l' * 100}:", 1), "at most 64"),
    "an over-long owner": (with_agent(owner="o" * 300 + "@example.com"), "at most 254"),
    "an over-long display name": (
        EXAMPLE.replace("display_name: Acme CRM", f"display_name: {'D' * 300}", 1),
        "at most 128",
    ),
    "a NUL in a string": (EXAMPLE.replace("display_name: Acme CRM", 'display_name: "Acme\\0CRM"', 1), "NUL"),
    "a lone surrogate": (EXAMPLE.replace("display_name: Acme CRM", 'display_name: "Acme\\uD800"', 1), "surrogate"),
    "a non-finite number": (EXAMPLE.replace("[example.com, support", "[.nan, support", 1), "finite"),
    "binary data": (
        EXAMPLE.replace("config: {record_url:", "config: {k: !!binary aGk=, record_url:", 1),
        "bytes",
    ),
    "a set": (EXAMPLE.replace("config: {record_url:", "config: {k: !!set {a}, record_url:", 1), "set"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_refuses_with_a_clear_error_and_writes_nothing(case: str, tmp_path) -> None:
    text, message = CASES[case]
    code, output = apply(tmp_path, text)
    assert code == 1, output
    assert "nothing was applied" in output and message in output, output
    assert not System.objects.exists() and not AgentIdentity.objects.exists()


def test_anchors_and_merge_keys_that_are_fine_still_work(tmp_path) -> None:
    text = EXAMPLE.replace(
        "  - name: crm\n    display_name: Acme CRM\n", "  - &crm\n    name: crm\n    display_name: Acme CRM\n", 1
    )
    text = text.replace("  - name: ticketing\n", "  - <<: *crm\n    name: ticketing\n", 1)
    code, output = apply(tmp_path, text)
    assert code == 0, output
    assert System.objects.get(name="ticketing").display_name == "Helpdesk"


def test_an_over_long_actor_is_refused(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command("policy_apply", str(path), "--actor", "x" * 300, stderr=err)
    assert exit.value.code == 1 and "--actor must be 1 to 255 characters" in err.getvalue()
    assert not System.objects.exists()
