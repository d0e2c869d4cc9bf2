"""Read `Authentication-Results` headers (RFC 8601): whom each operator says it authenticated. Pure."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.sanitize import strip_unsafe

MAX_AUTH_RESULTS = 32
_MAX_HEADER = 8192   # characters of one header read (real ones hold a few hundred)


@dataclass(frozen=True)
class AuthResult:
    """One result of an `Authentication-Results` header (RFC 8601), lower-cased; see auth_results."""
    authserv_id: str
    method: str
    result: str
    mailfrom: str | None      # smtp.mailfrom: an address, or a domain alone
    header_from: str | None   # header.from: an address, or a domain alone (as DMARC writes it)


_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PAIR = re.compile(r'(?<![A-Za-z0-9_./-])([A-Za-z0-9_-]+(?:\s*/\s*[0-9]+)?(?:\s*\.\s*[A-Za-z0-9_-]+)?)\s*=\s*'
                      rf'((?:{_QUOTED})?[^\s";]*)')   # a token, a quoted string, or `"local"@domain`


def auth_results(headers: list[str]) -> tuple[AuthResult, ...]:
    """Every result of the `Authentication-Results` headers, in order (RFC 8601):
    `authserv-id [version]; method[/version]=result [reason=…] [ptype.property=value …]; …`."""
    found: list[AuthResult] = []
    for header in headers[:MAX_AUTH_RESULTS]:
        head, *results = _split(_uncomment(strip_unsafe(header[:_MAX_HEADER])))
        first = re.match(rf"\s*({_QUOTED}|\S+)", head)
        authserv_id = _value(first.group(1)) if first else ""
        for result in results:
            pairs = [(re.sub(r"\s+", "", k).lower(), _value(v)) for k, v in _PAIR.findall(result) if v]
            if not pairs or "." in pairs[0][0]:
                continue   # `none`, or no method=result
            props = dict(pairs[1:])
            found.append(AuthResult(authserv_id, pairs[0][0].split("/")[0], pairs[0][1],
                                    props.get("smtp.mailfrom") or None, props.get("header.from") or None))
    return tuple(found[:MAX_AUTH_RESULTS])


def _uncomment(value: str) -> str:
    """The header without its (nested) comments; quoted strings kept whole."""
    out, depth, quoted, escaped = [], 0, False, False
    for c in value:
        if escaped:
            escaped = False
        elif c == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = c != '"'
        elif c == "(":
            depth += 1
            continue
        elif c == ")" and depth:
            depth -= 1
            c = " "
        elif c == '"' and not depth:
            quoted = True
        if not depth:
            out.append(c)
    return "".join(out)


def _split(value: str) -> list[str]:
    """Split on `;` outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for c in value:
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    parts.append("".join(current))
    return parts


def _value(value: str) -> str:
    value = re.sub(_QUOTED, lambda m: re.sub(r"\\(.)", r"\1", m.group()[1:-1]), value)
    return value.strip().strip("<>").lower()
