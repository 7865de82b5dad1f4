from __future__ import annotations

import pytest

from governance.conditions import compile_condition, domains_in, parse_path

LISTS = {"known_payees": ["ACME Ltd", "Globex"], "company_domains": ["example.com"]}


def holds(spec: dict, params: dict) -> bool:
    return compile_condition({"tier": 3, **spec}, LISTS).holds(params)


def test_payment_to_an_unknown_payee_or_over_500_needs_approval() -> None:
    payee = {"param": "payee", "op": "not_in", "list": "known_payees"}
    amount = {"param": "amount", "op": "gt", "value": 500}
    assert not holds(payee, {"payee": "ACME Ltd"}) and not holds(amount, {"amount": 500})
    assert holds(payee, {"payee": "Initech"}) and holds(amount, {"amount": 500.01})


def test_changing_a_transfer_recipient_can_be_human_only() -> None:
    cond = compile_condition({"param": "recipient", "op": "present", "tier": 4}, LISTS)
    assert cond.holds({"transfer_id": "T1", "recipient": "X"})
    assert not cond.holds({"transfer_id": "T1"})


@pytest.mark.parametrize("params", [{}, {"amount": "600"}, {"amount": None}, {"amount": True}, {"amount": [1]}])
def test_a_missing_or_wrongly_typed_parameter_counts_as_holding(params) -> None:
    assert holds({"param": "amount", "op": "lt", "value": 0}, params)


def test_nested_paths_and_any_element_of_a_list() -> None:
    country = {"param": "address.country", "op": "in", "value": ["US", "CA"]}
    assert holds(country, {"address": {"country": "US"}})
    assert not holds(country, {"address": {"country": "DE"}})
    assert holds(country, {"address": "US"})  # wrong type
    items = {"param": "items[*].amount", "op": "gt", "value": 100}
    assert holds(items, {"items": [{"amount": 5}, {"amount": 500}]})
    assert not holds(items, {"items": [{"amount": 5}, {"amount": 50}]})
    assert holds(items, {"items": [{"amount": 5}, {}]})
    assert holds(items, {"items": "oops"})


@pytest.mark.parametrize(
    "op, value, actual, expected",
    [
        ("gte", 10, 10, True),
        ("lte", 10, 11, False),
        ("eq", "x", "x", True),
        ("ne", "x", "x", False),
        ("matches", r"(?i)wire\s+transfer", "please WIRE  transfer", True),
        ("matches", r"^\d+$", "12a", False),
        ("domain_in", ["example.com"], "https://a.example.com/x", True),
        ("domain_not_in", ["example.com"], "https://example.com.evil.test/", True),
    ],
)
def test_operators(op, value, actual, expected) -> None:
    assert holds({"param": "p", "op": op, "value": value}, {"p": actual}) is expected


def test_domains_in_reads_addresses_urls_and_text() -> None:
    assert domains_in("Bob <bob@Example.COM>") == ["example.com"]
    assert domains_in("https://user:pw@evil.test:8443/x") == ["evil.test"]
    assert domains_in("plain words only") == []
    assert domains_in("nodomain") is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"param": "a", "op": "between", "value": 1}, "unknown operator"),
        ({"param": "a[", "op": "eq", "value": 1}, "malformed parameter path"),
        ({"param": "a", "op": "in", "list": "nope"}, "unknown list 'nope'"),
        ({"param": "a", "op": "gt", "value": "ten"}, "needs a number"),
        ({"param": "a", "op": "matches", "value": "("}, "invalid regular expression"),
        ({"param": "a", "op": "gt", "list": "known_payees"}, "takes a value, not a list"),
    ],
)
def test_malformed_conditions_are_refused_with_a_reason(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        compile_condition({"tier": 3, **spec}, LISTS)


def test_parse_path() -> None:
    assert parse_path("recipients[*]") == (("recipients", True),)
    assert parse_path("address.country") == (("address", False), ("country", False))
