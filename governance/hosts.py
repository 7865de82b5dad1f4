"""Which hosts a string refers to, read the way browsers and mail clients read it.

Every URL goes through the WHATWG URL parser (ada-url, the parser Node uses), so a link counts
as going where a browser would go: `https://evil.test\\@example.com/` is evil.test,
`https:evil.test` is evil.test, `http://0x7f.1/` is 127.0.0.1, and hosts are compared in their
IDNA (UTS 46) form. Around that parser sits the part a mail client adds: finding the links in
free text. A piece of text ends at whitespace, `<`, `>`, `"` and a backtick; the punctuation a
mail client leaves out of a link is stripped (`(jürgen@example.com)` is example.com); `mailto:`
links give every address they carry (fragments dropped, percent escapes decoded); and bare
`host/path` links count when the host ends in a name-like label.

When in doubt this module reads more hosts, not fewer: every host it finds can only make a
`domain_in` or `domain_not_in` condition hold, and only make a destination check refuse.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import unquote

from ada_url import SchemeType, parse_url

_PIECE_RE = re.compile(r"[^\s<>\"`]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_ADDRESS_END_RE = re.compile(r"[\s,;&<>\"'()]")
_HINTS = (".", ":", "@", "\u3002", "\uff0e", "\uff61", "%")
_LEADING = "([{'\u00ab\u2018\u201c"
_TRAILING = ".,;:!?'\u00bb\u2019\u201d*"
_CLOSING = {")": "(", "]": "[", "}": "{"}
# The dots UTS 46 maps to '.', and a percent-encoded dot, which the host parser decodes.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]*\]")  # one class, one star: no backtracking
_URL_IGNORED = str.maketrans("", "", "\t\n\r")
_AUTHORITY_END_RE = re.compile(r"[/?#\\]")
_PORT_RE = re.compile(r":[0-9]*$")


def host_of_url(url: str) -> str | None:
    """The host of a URL as the WHATWG parser reads it, or None (no host, or not a URL).

    One trailing dot is dropped (`example.com.` is example.com). A non-special scheme
    (`foo://Host/`) has an opaque host; it is read as an http host would be.
    """
    return _cached_host(url) if len(url) <= _CACHED_LENGTH else _host(url)


_CACHED_LENGTH = 512  # agents send the same addresses and links again and again; long text is not cached


def _host(url: str) -> str | None:
    try:
        parts = parse_url(url, attributes=("hostname", "scheme_type"))
    except ValueError:  # not a URL, or not valid Unicode
        return None
    host = parts["hostname"]
    if not host:
        return None
    if parts["scheme_type"] == SchemeType.NOT_SPECIAL:
        return host_of_url("http://" + host) or _trim(host.lower())
    return _trim(host)


_cached_host = functools.lru_cache(maxsize=4096)(_host)


def _trim(host: str) -> str | None:
    return (host[:-1] if host.endswith(".") else host) or None


def domain_name(entry: object) -> str | None:
    """A listed domain (or IP address) in the form hosts are compared in, or None if it is not one."""
    if not isinstance(entry, str):
        return None
    entry = entry.strip()
    forbidden = "/?#@\\*" if entry.startswith("[") else "/?#@\\*:"
    if not entry or any(ch in forbidden or ch.isspace() for ch in entry):
        return None
    return host_of_url("http://" + entry)


def is_ip(host: str) -> bool:
    return host.startswith("[") or all(part.isdigit() for part in host.split("."))


def domain_matches(host: str, listed: frozenset[str]) -> bool:
    """True when host is a listed domain or a subdomain of one; IP addresses match only exactly."""
    if host in listed:
        return True
    if is_ip(host):
        return False
    parts = host.split(".")
    return any(".".join(parts[i:]) in listed for i in range(1, len(parts)))


def _strip(piece: str) -> str:
    """Drop the punctuation around a link that a mail client leaves out of it (linear time:
    agents choose this text)."""
    start, end = 0, len(piece)
    while start < end and piece[start] in _LEADING and not _is_v6_literal(piece, start):
        start += 1  # but "[::1]" is an address, not a bracketed one
    unclosed = {close: piece.count(close, start) - piece.count(open_, start) for close, open_ in _CLOSING.items()}
    while end > start:
        last = piece[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in _CLOSING and unclosed[last] > 0:
            unclosed[last] -= 1  # an unbalanced bracket closes the sentence, not the link
            end -= 1
        else:
            break
    return piece[start:end]


def _is_v6_literal(piece: str, start: int) -> bool:
    if piece[start] != "[":
        return False
    literal = _IPV6_RE.match(piece, start)
    return literal is not None and ":" in literal.group(0)


def _address_hosts(text: str) -> list[str]:
    """The domain after every '@' (a@b@c names both b and c; a reader may take either)."""
    found = []
    for segment in text.split("@")[1:]:
        domain = _ADDRESS_END_RE.split(segment, 1)[0]
        if domain.startswith("[") and domain.endswith("]"):
            domain = domain[1:-1]  # an address literal: user@[192.0.2.1]
        if domain and (host := host_of_url("http://" + domain)):
            found.append(host)
    return found


def _mailto_hosts(link: str) -> list[str]:
    try:
        parts = parse_url(link, attributes=("pathname", "search"))
        text = parts["pathname"] + parts["search"]
    except ValueError:
        text = link[len("mailto:") :]
    return _address_hosts(unquote(text))


def _ends_in_a_number(labels: list[str]) -> bool:
    """The URL standard's test for an IPv4 host (`10.1`, `0x7f.1`, `2130706433`)."""
    last = labels[-1]
    return last.isdigit() or (last[:2].lower() == "0x" and all(c in "0123456789abcdefABCDEF" for c in last[2:]))


def _bare_host(piece: str, token: bool) -> str | None:
    """The host of a link written without a scheme (`evil.test/x`, `www.example.com`), or None.

    In free text only names and dotted quads count (`3.14` is a number, not a link); in a value
    that is one token, a dotted host ending in a number is read as the URL parser reads IPv4."""
    authority = _AUTHORITY_END_RE.split(piece, 1)[0]
    host = authority.rsplit("@", 1)[-1]
    if not host.startswith("["):
        host = _PORT_RE.sub("", host)
        name = host.translate(_DOTS).replace("%2e", ".").replace("%2E", ".")
        labels = (name[:-1] if name.endswith(".") else name).split(".")
        # One token with a dot that ends in a number is an IPv4 address to the URL parser. A bare
        # number ("1", "2130706433") is too likely to be something else: it names no host.
        if token and len(labels) > 1 and labels[-1] and _ends_in_a_number(labels) and name.isascii():
            return host_of_url("http://" + piece)
        if len(labels) < 2:
            return None
        # Format characters (a soft hyphen, say) vanish in IDNA mapping; letters and marks remain.
        tld = [ch for ch in labels[-1] if unicodedata.category(ch) != "Cf"]
        name_like = len(tld) >= 2 and (
            all(unicodedata.category(ch)[0] in "LM" for ch in tld) or "".join(tld).lower().startswith("xn--")
        )
        if not name_like and not (len(labels) == 4 and all(label.isdigit() for label in labels)):
            return None
    return host_of_url("http://" + piece)


def _readings(piece: str, token: bool, nested: bool = False) -> list[str]:
    """Every host one piece of text may name: as a URL, as addresses, and as a bare link."""
    found: list[str] = []
    scheme = _SCHEME_RE.match(piece)
    if scheme and scheme.group(0).lower() == "mailto:":
        return _mailto_hosts(piece)
    if scheme:
        host = host_of_url(piece)
        if host:
            found.append(host)
        elif not nested and (rest := _strip(piece[scheme.end() :])):
            # "Note:evil.test/x" is not a URL, but may hold a link; one level, never "a:a:a:..." deep.
            found.extend(_readings(rest, token, nested=True))
    if "@" in piece:
        found.extend(_address_hosts(piece))
        if piece.count("@") == 1 and not any(ch in piece for ch in ":/?#\\"):
            return found  # read as a bare link, local@domain is userinfo@host: the same host
    if host := _bare_host(piece, token):
        found.append(host)
    return found


def hosts_in(value: str) -> list[str] | None:
    """The hosts an address, URL, host name or free text refers to, without repeats.

    A value without whitespace is one token: if it names no host it gives None (the operator
    cannot judge it). Free text without links gives an empty list.
    """
    found = _cached_hosts(value) if len(value) <= _CACHED_LENGTH else _hosts(value)
    return None if found is None else list(found)


def _hosts(value: str) -> tuple[str, ...] | None:
    text = value.strip()
    if not text:
        return None
    found: dict[str, None] = {}
    token = not any(ch.isspace() for ch in text)
    joined = text.translate(_URL_IGNORED)
    if joined != text and not any(ch.isspace() for ch in joined):
        # The URL parser drops tabs and line breaks, so "https://exa<TAB>mple.com" is example.com.
        found.update(dict.fromkeys(_readings(_strip(joined), True)))
    for match in _PIECE_RE.finditer(text):
        raw = match.group(0)
        if not token and not any(hint in raw for hint in _HINTS):
            continue
        pieces = [raw]
        if "," in raw or ";" in raw:
            pieces.extend(re.split(r"[,;]", raw))  # a list written without spaces, read both ways
        for piece in pieces:
            piece = _strip(piece)
            if piece and (token or any(hint in piece for hint in _HINTS)):
                found.update(dict.fromkeys(_readings(piece, token)))
    if not found and token:
        return None
    return tuple(found)


_cached_hosts = functools.lru_cache(maxsize=4096)(_hosts)
