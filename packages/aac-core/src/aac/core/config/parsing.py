"""Reading config text: JSON with ``//`` and ``/* */`` comments and trailing commas, as NNCF reads it.

NNCF strips comments and trailing commas with jstyleson and hands the rest to Python's ``json``. aac
does the same on one text: :func:`blank_comments` replaces each comment (and each trailing comma) by
spaces, keeping every other character - newlines included - in place, and ``json`` parses that copy.
Every error position is therefore the line and column of the user's file, and there is no second
reader whose opinion could differ from the first. Every config jstyleson reads is read to the same
value (a property test checks this against jstyleson); the differences are fixes:

* a file may end in a ``// comment`` without a final newline (jstyleson left the comment in place);
* an unterminated ``/*`` is reported as such, with where it starts (jstyleson: "Extra data");
* a key written twice in one object is an error naming the key, the object's JSON path and the lines
  of both (``json`` silently keeps the last value, so a duplicated budget or algorithm changed the run);
* a config nested more than :data:`MAX_DEPTH` levels deep is refused with a ``ConfigError`` before
  anything recursive runs, whether it comes as text or as a mapping (deep nesting used to end in a
  ``RecursionError`` from the JSON reader or from one of the later walks over the config);
* a ``/* */`` comment ends at the first ``*/``; jstyleson ended it at any ``/`` after a ``*`` in it,
  so ``/* lr = base*2/8 */`` broke the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem, one_line

#: How deeply objects and arrays may nest (the root object is level 1). Real configs stay below 10;
#: the limit only keeps the recursive steps (``json``, schema validation, the rule walks) far from
#: Python's recursion limit.
MAX_DEPTH = 100

_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[][{}:,]', re.DOTALL)  # a string (closed or not) or a punctuator


def _blank(text: str) -> tuple[str, int | None]:
    """:func:`blank_comments`, plus the offset of a ``/*`` that is never closed (None if all are)."""
    out = list(text)
    i, n = 0, len(text)
    in_string = False
    unterminated: int | None = None
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
            end = n if end == -1 else end  # a comment on the last line needs no newline after it
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                unterminated, end = i, n
            else:
                end += 2
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            i = end
            continue
        elif ch in "]}" and last_significant >= 0 and out[last_significant] == ",":
            out[last_significant] = " "
        if not ch.isspace():
            last_significant = i
        i += 1
    return "".join(out), unterminated


def blank_comments(text: str) -> str:
    """Replace comments (and trailing commas) by spaces, keeping every other character in place."""
    return _blank(text)[0]


def _position(text: str, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of ``offset`` - counted as ``json`` counts them."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _times(count: int) -> str:
    return {2: "twice", 3: "three times"}.get(count, f"{count} times")


def _places(text: str, offsets: list[int]) -> str:
    """``lines 5 and 9``, or ``line 5 column 3 and line 5 column 20`` when two share a line."""
    positions = [_position(text, offset) for offset in offsets]
    lines = [line for line, _ in positions]
    if len(set(lines)) == len(lines):
        words = [str(line) for line in lines]
        prefix = "lines "
    else:
        words = [f"line {line} column {column}" for line, column in positions]
        prefix = ""
    return prefix + (words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}")


def _too_deep(where: str = "") -> ConfigProblem:
    return ConfigProblem("$", f"nested more than {MAX_DEPTH} levels deep{where}")


def _scan(text: str) -> tuple[ConfigProblem | None, list[ConfigProblem]]:
    """(too-deep problem or None, duplicate-key problems) of comment-blanked JSON, in one pass without recursion.

    Strings are read as whole tokens, so brackets, colons and key names inside them count for
    nothing. A too-deep text stops the scan; the duplicate keys are only meaningful for text that
    ``json`` then parses (the caller checks that first). Duplicates come in the order of their first
    occurrence in the text.
    """
    # a frame: [path, keys (offsets of each key, None in an array), index or current key, expecting a key]
    stack: list[list[Any]] = []
    duplicates: list[tuple[int, ConfigProblem]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        top = stack[-1] if stack else None
        if token in ("[", "{"):
            if len(stack) == MAX_DEPTH:
                line, column = _position(text, match.start())
                return _too_deep(f" (level {MAX_DEPTH + 1} opens at line {line}, column {column})"), []
            if top is None:
                path = "$"
            elif top[1] is None:
                path = f"{top[0]}[{top[2]}]"
            else:
                path = f"{top[0]}.{one_line(str(top[2]))}"
            stack.append([path, {} if token == "{" else None, 0, token == "{"])
        elif token in ("]", "}"):
            if top is None:
                continue
            stack.pop()
            for key, offsets in (top[1] or {}).items():
                if len(offsets) > 1:
                    message = f"key '{one_line(key)}' appears {_times(len(offsets))} ({_places(text, offsets)})"
                    duplicates.append((offsets[0], ConfigProblem(top[0], message)))
        elif top is None:
            continue
        elif token == ",":
            if top[1] is None:
                top[2] += 1
            else:
                top[3] = True
        elif token.startswith('"') and top[1] is not None and top[3]:
            try:
                key = json.loads(token)  # "\u0061" and "a" are one key
            except ValueError:
                key = token
            top[1].setdefault(key, []).append(match.start())
            top[2], top[3] = key, False
    return None, [problem for _, problem in sorted(duplicates, key=lambda item: item[0])]


def check_depth(data: Any) -> list[ConfigProblem]:
    """The too-deep problem for a mapping (or list) nested more than :data:`MAX_DEPTH` levels, else none.

    Iterative, so that it holds for any depth - and for a container that contains itself.
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            return [_too_deep()]
        stack.extend((child, depth + 1) for child in children)
    return []


def parse_text(text: str, source: str | None) -> Any:
    """Parse commented JSON; anything wrong becomes a ConfigError that says where in the text."""
    blanked, unterminated = _blank(text)
    if unterminated is not None:
        line, column = _position(text, unterminated)
        raise ConfigError([ConfigProblem("$", f"unterminated /* comment starting at line {line}, column {column}")], source)
    too_deep, duplicates = _scan(blanked)
    if too_deep is not None:
        raise ConfigError([too_deep], source)
    try:
        data = json.loads(blanked)
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ConfigError([ConfigProblem("$", message)], source) from None
    except RecursionError:  # not reachable after the scan; kept so that no RecursionError ever escapes
        raise ConfigError([_too_deep()], source) from None
    if duplicates:
        raise ConfigError(duplicates, source)
    return data


#: what may precede a config's text without being part of it: a byte-order mark, zero-width spaces, white space
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060 \t\r\n"
#: no file path is this long (PATH_MAX is 4096 on Linux)
_LONGEST_PATH = 4096


def is_config_text(source: str) -> bool:
    """True if the string ``load_config`` got is config text rather than a file path.

    Text starts like JSON (after a byte-order mark or white space); a string with a line break, a NUL or
    more characters than any path can have is text as well, so a malformed config gets a parse error at
    its line instead of "file does not exist" with the whole config as the file name.
    """
    return source.lstrip(_INVISIBLE).startswith(("{", "[", "//", "/*")) or any(c in source for c in "\n\x00") or len(source) > _LONGEST_PATH


def _shortened(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_source(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Any, str | None]:
    """Return (data, name of the source for messages) for a path, a JSON string or a mapping."""
    if isinstance(source, Mapping):
        if problems := check_depth(source):
            raise ConfigError(problems)
        return source, None
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not is_config_text(source)):
        path = Path(source)
        name = _shortened(str(path))
        try:
            text = path.read_text(encoding="utf-8-sig")  # editors on Windows may start the file with a BOM
        except FileNotFoundError:
            raise ConfigError([ConfigProblem("$", f"config file {name} does not exist")], name) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
            raise ConfigError([ConfigProblem("$", f"cannot read config file {name}: {exc}")], name) from None
        return parse_text(text, str(path)), str(path)
    if isinstance(source, str):
        return parse_text(source.lstrip(_INVISIBLE), None), None
    raise TypeError(f"load_config takes a path, a JSON string or a dict, not {type(source).__name__}")
