"""Locations as pipex shows them: credentials inside URLs are replaced by ``***``.

A URL may carry secrets: ``s3://key:secret@bucket/...``, ``https://user:password@host/...``,
or a signed query string (``?sig=...``, ``?token=...``, ``X-Amz-Signature=...``). pipex uses
the real location to reach the data, and shows every location, and every message that may
hold one, through :func:`redact`: in ``str(target)`` and ``repr``, errors, progress, the run
ledger's rows and the command line's output.
"""

from __future__ import annotations

import re

#: ``scheme://user:password@`` or ``scheme://token@``: everything between ``//`` and ``@``
#: (no ``/``, whitespace or quote inside, so an ``@`` further down the path is left alone).
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")
#: A query parameter whose name says it is a secret, up to the next ``&``, ``#`` or end.
_SECRET_PARAMETER = re.compile(
    r"([?&][^=&#\s'\"]*(?:sig|signature|token|secret|password|passwd|pwd|credential|key|auth)"
    r"[^=&#\s'\"]*=)[^&#\s'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` (a location, or a message holding some) with URL credentials hidden."""
    if "://" not in text and "=" not in text:
        return text  # the usual case: a plain path
    text = _USERINFO.sub(r"\1***@", text)
    return _SECRET_PARAMETER.sub(r"\1***", text)


#: Attributes of exceptions that hold text shown with them (``OSError``'s among them).
_TEXT_ATTRIBUTES = ("strerror", "filename", "filename2", "msg", "reason")


def scrub(exc: BaseException, *locations: str) -> BaseException:
    """``exc``, and every exception chained to it (cause and context), with the credentials
    of URLs in their messages hidden (:func:`redact`), in place: for errors pipex raises
    ``from`` another library's, whose message may quote a URL whole, or (for the
    ``locations`` given) its credentials without the scheme that marks them. Returns
    ``exc``."""
    secrets = [m.group(1) for loc in locations for m in _CREDENTIALS.finditer(loc)]

    def hidden(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        try:
            current.args = tuple(hidden(a) if isinstance(a, str) else a for a in current.args)
            for name in _TEXT_ATTRIBUTES:
                value = getattr(current, name, None)
                if isinstance(value, str) and value != hidden(value):
                    setattr(current, name, hidden(value))
        except (AttributeError, TypeError):
            pass  # an exception whose text cannot be set: left as it is
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [hidden(n) if isinstance(n, str) else n for n in notes]
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return exc


#: The credentials of a URL: what lies between ``//`` and ``@``.
_CREDENTIALS = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://([^/\s@'\"]+)@")
