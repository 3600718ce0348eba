"""Reading config text: JSON with ``//`` and ``/* */`` comments and trailing commas, as NNCF reads it.

Parsing goes through jstyleson, exactly like NNCF, so every file NNCF accepted is accepted here. When
the text is malformed, the error position is computed on a copy whose comments were blanked out
character for character, so the reported line and column are those of the user's file (jstyleson's
own clean-up moves text around and would report a wrong line).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jstyleson

from aac.core.errors import ConfigError, ConfigProblem


def blank_comments(text: str) -> str:
    """Replace comments (and trailing commas) by spaces, keeping every other character in place."""
    out = list(text)
    i, n = 0, len(text)
    in_string = False
    last_significant = -1  # index of the last non-space character outside comments
    while i < n:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
                last_significant = i
            i += 1
            continue
        if ch == '"':
            in_string = True
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            i = end
            continue
        elif ch in "]}" and last_significant >= 0 and out[last_significant] == ",":
            out[last_significant] = " "
        if not ch.isspace():
            last_significant = i
        i += 1
    return "".join(out)


def parse_text(text: str, source: str | None) -> Any:
    """Parse commented JSON; a syntax error becomes a ConfigError with the line and column."""
    try:
        return jstyleson.loads(text)
    except ValueError as exc:
        original = exc
    try:
        json.loads(blank_comments(text))
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    else:
        message = f"malformed JSON: {original}"
    raise ConfigError([ConfigProblem("$", message)], source) from None


def read_source(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Any, str | None]:
    """Return (data, name of the source for messages) for a path, a JSON string or a mapping."""
    if isinstance(source, Mapping):
        return source, None
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not source.lstrip().startswith(("{", "[", "//", "/*"))):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8-sig")  # editors on Windows may start the file with a BOM
        except FileNotFoundError:
            raise ConfigError([ConfigProblem("$", f"config file {path} does not exist")], str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([ConfigProblem("$", f"cannot read {path}: {exc}")], str(path)) from None
        return parse_text(text, str(path)), str(path)
    if isinstance(source, str):
        return parse_text(source, None), None
    raise TypeError(f"load_config takes a path, a JSON string or a dict, not {type(source).__name__}")
