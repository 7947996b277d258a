"""A fingerprint of a function's code: what ``pipex.rerun: code`` compares between runs.

The fingerprint is a token of the function's source tokens from its ``def`` on, without
comments, blank lines, indentation or decorators: reformatting or commenting a function
leaves it unchanged, changing what it does (``*2`` to ``*3``) does not. Where the source
cannot be read (a function made in a REPL), it is a token of the bytecode and constants.
Helper functions the function calls are not part of it.
"""

from __future__ import annotations

import inspect
import io
import textwrap
import tokenize
import types
from typing import Any

from pipex.core.tokens import token

#: Token types that say nothing about what the code does.
_LAYOUT = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
)


def fingerprint(fn: Any) -> str:
    """A hex token of ``fn``'s code, stable across processes and formatting changes."""
    fn = inspect.unwrap(fn)
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        words = _words(source)
    except (OSError, TypeError, tokenize.TokenError, SyntaxError, IndentationError):
        code = getattr(fn, "__code__", None)
        return token("bytecode", _bytecode(code) if code is not None else repr(fn))
    return token("source", words)


def _words(source: str) -> list[str]:
    """The source's meaningful tokens from its first ``def``/``async``/``lambda`` on."""
    words: list[str] = []
    started = False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in _LAYOUT:
            continue
        if not started:
            started = tok.type == tokenize.NAME and tok.string in ("def", "async", "lambda")
            if not started:
                continue
        words.append(tok.string)
    return words


def _bytecode(code: types.CodeType) -> tuple[Any, ...]:
    """Bytecode, names and constants of ``code`` and of the code objects it holds."""
    consts = tuple(
        _bytecode(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    )
    return (code.co_code, code.co_names, consts)
