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
