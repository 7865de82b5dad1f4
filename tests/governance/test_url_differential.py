"""Warden's host reading against a WHATWG reference: Node's built-in URL (tests/governance/whatwg_hosts.js).

A few hundred URLs, host names, addresses and `mailto:` links, alone and inside text, each
with the host a browser would contact. Warden must read that host every time. It may read
more (README: a piece is read every way it can be, so `a@b` inside a URL also names b), but
an input without '@', tabs or line breaks must give exactly the reference host.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from governance.hosts import hosts_in

SCRIPT = Path(__file__).with_name("whatwg_hosts.js")

HOSTS = [
    "example.com",
    "EXAMPLE.COM",
    "sub.example.com",
    "example.com.",
    "a.b.c.example.co.uk",
    "bücher.de",
    "faß.de",
    "xn--bcher-kva.de",
    "ＥＸＡＭＰＬＥ.com",
    "evil。test",
    "evil．test",
    "evil｡test",
    "ex%61mple.com",
    "example.com\u00ad",
    "127.0.0.1",
    "0x7f.1",
    "2130706433",
    "[::1]",
    "[2001:db8::1]",
    "evil.test",
]
SCHEMES = ["http://", "https://", "HTTPS://", "https:", "https:/", "https:\\\\", "ftp://", "wss://", "foo://"]
USERINFO = ["", "", "user@", "u:p@", "example.com@"]
SUFFIXES = ["", "/", "/x?y#z", ":8080/p", "\\@example.com/", "#@example.com", "?@example.com", "/a/../b"]
TRICKS = [
    "https://evil.test\\@example.com/",
    "https://evil.test\\\\example.com/",
    "https:evil.test",
    "https:/\\evil.test/x",
    "http://exa\tmple.com/",
    "http://evil.test#@example.com",
    "http://example.com@evil.test",
    "http://user:pa:ss@evil.test:1/",
    "http://0300.0250.0.1/",
    "http://[0:0::1]/",
    "file://evil.test/etc/passwd",
    "git+ssh://git@Evil.Test/repo.git",
    "ws://EVIL.test:80/",
    "https://xn--ls8h.la/",
    "https://☃.net/",
    "https://evil.test:443/",
    "https://%65vil.test/",
]
TEXTS = ["See {} today", "({})", "<{}>", "Links: {}, and more", "{}.", '"{}"', "Go to {}!", "[{}]", "x {}\ny"]


def cases() -> list[tuple[str, str]]:
    rng = random.Random(20261123)
    urls = {f"{s}{u}{h}{x}" for s in SCHEMES for u in USERINFO for h in HOSTS for x in SUFFIXES}
    chosen = sorted(rng.sample(sorted(urls), 220)) + TRICKS
    out = [("url", u) for u in chosen]
    out += [("host", h) for h in HOSTS]
    out += [("host", h + "/path?q") for h in HOSTS]
    out += [("address", f"{local}@{h}") for local in ("ann", "jürgen", "a.b+c") for h in HOSTS if "[" not in h]
    out += [("mailto", f"mailto:{local}@{h}#frag") for local in ("a", "b%2Bc") for h in HOSTS if "[" not in h]
    return out


@pytest.fixture(scope="session")
def reference() -> dict[tuple[str, str], str | None]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the WHATWG reference is Node's URL")
    items = cases()
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(items), capture_output=True, text=True, check=True, timeout=60
    )
    return dict(zip(items, json.loads(done.stdout)))


def _check(text: str, expected: str, value: str) -> None:
    found = hosts_in(text)
    assert found is not None and expected in found, (text, expected, found)
    # Only '@' (addresses) and tabs or line breaks (the parser drops them, a mail client splits
    # there) give a second reading.
    if not any(ch in value for ch in "@\t\n\r"):
        assert found == [expected], (text, expected, found)


def test_the_reference_covers_a_few_hundred_inputs(reference) -> None:
    with_host = [k for k, v in reference.items() if v is not None]
    assert len(with_host) >= 300, len(with_host)


def test_every_url_host_and_address_reads_as_the_whatwg_host(reference) -> None:
    checked = 0
    for (kind, value), expected in reference.items():
        if expected is None:
            continue  # not a URL for a browser either; what Warden reads of it is tested by example
        if kind == "host" and value.split("/")[0].isdigit():
            assert hosts_in(value) is None  # README: a bare number names no host, so conditions hold
            continue
        _check(value, expected, value)
        checked += 1
    assert checked >= 300


def test_the_same_links_inside_text_read_the_same(reference) -> None:
    checked = 0
    for (kind, value), expected in reference.items():
        if expected is None or kind == "host" and not value[0].isalpha():
            continue  # a bare number or [v6] in prose is not a link a mail client makes
        if any(ch.isspace() for ch in value):
            continue
        for template in TEXTS:
            _check(template.format(value), expected, value)
            checked += 1
    assert checked >= 2000
