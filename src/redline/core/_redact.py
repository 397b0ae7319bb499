"""Redaction: secret values never reach a stored run, a report or the terminal.

Header values of ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and
``Set-Cookie`` are always secret; a plan's ``redact:`` list (or ``--redact NAME``) adds
header and field names. A secret's value is replaced by ``[redacted]`` wherever redline
writes plan data (headers, bodies, query strings, a URL's password) and in free text it
keeps (notes, scenario tracebacks), where both the known literal values and
``name: value`` / ``"name": "value"`` / ``name=value`` shapes are scrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DEFAULT_REDACTED", "REDACTED", "Redactor"]

DEFAULT_REDACTED = ("authorization", "proxy-authorization", "cookie", "set-cookie")
"""Headers whose values are always secret, whatever a plan says."""
REDACTED = "[redacted]"
"""What stands in place of a secret value."""
# Shorter literal values are not scrubbed from free text: replacing every "1" or "ab"
# in a traceback would destroy it and hide nothing worth hiding.
_MIN_SECRET = 4


class Redactor:
    """Replaces the values of secret headers and fields with ``[redacted]``.

    Args:
        names: header or field names to redact besides the defaults (any case).
        secrets: literal secret values to scrub from free text wherever they appear.
    """

    def __init__(self, names: Iterable[str] = (), *, secrets: Iterable[str] = ()) -> None:
        self.names = frozenset(n.strip().lower() for n in (*DEFAULT_REDACTED, *names))
        self.secrets = tuple(
            sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        )
        alt = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        self._header_line = re.compile(rf"(?im)^([ \t]*(?:{alt})[ \t]*:[ \t]*)(\S[^\r\n]*)")
        self._quoted = re.compile(
            rf"""(?i)(["'])(?:{alt})\1\s*[:=]\s*"""
            r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[^,}\]\s]+)"""
        )
        self._pair = re.compile(rf"(?i)(?<![\w.-])((?:{alt})=)([^&\s;,'\"]*)")

    def is_secret(self, name: str) -> bool:
        """Whether values named ``name`` are redacted."""
        return name.strip().lower() in self.names

    def headers(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """``(name, value)`` pairs with secret values replaced."""
        return [(k, REDACTED if self.is_secret(k) else v) for k, v in pairs]

    def text(self, text: str) -> str:
        """Free text (a body, a traceback) with every secret value it shows replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = self._header_line.sub(lambda m: m.group(1) + REDACTED, text)
        text = self._quoted.sub(_quoted_replacement, text)
        return self._pair.sub(lambda m: m.group(1) + REDACTED, text)

    def url(self, url: str) -> str:
        """A URL without its password and with secret query parameters replaced."""
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:{REDACTED}@{host}"
        return urlunsplit(parts._replace(netloc=netloc, query=self.text(parts.query)))

    def lines(self, items: Sequence[str]) -> tuple[str, ...]:
        """Each of ``items`` through :meth:`text`."""
        return tuple(self.text(item) for item in items)


def _quoted_replacement(match: re.Match[str]) -> str:
    whole, value = match.group(0), match.group(2)
    quote = value[0] if value[:1] in ("'", '"') else '"'
    return whole[: len(whole) - len(value)] + f"{quote}{REDACTED}{quote}"
