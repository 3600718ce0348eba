"""The ``aac`` command: ``aac validate FILE...``, ``aac plugins``, ``aac schema``.

Problems are printed one per line as ``FILE: $.json.path: message`` (the format editors and CI
annotators parse); a bad config never produces a traceback. A valid file prints ``FILE: ok``, then
one indented ``note:`` line per entry of :attr:`Config.notes <aac.core.config.Config.notes>` (a legacy
spelling that was read as its current key, a file that needs a controller built in code). A broken
plugin is one ``aac: warning: ...`` line on standard error, and the command goes on without it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from aac.core._version import __version__
from aac.core.config import load_config
from aac.core.config.schema import compose_schema
from aac.core.errors import AacError, ConfigError
from aac.core.plugins import AacPluginWarning, Registry, default_registry


def _validate(args: argparse.Namespace, registry: Registry) -> int:
    failed = 0
    for name in args.files:
        try:
            config = load_config(name, registry=registry)
        except ConfigError as exc:
            failed += 1
            for problem in exc.problems:
                print(f"{name}: {problem.path}: {problem.message}")
            continue
        except AacError as exc:
            failed += 1
            print(f"{name}: $: {exc}")
            continue
        if not args.quiet:
            notes = "".join(f"\n  note: {n}" for n in config.notes)
            print(f"{name}: ok{notes}")
    if failed and not args.quiet:
        print(f"{failed} of {len(args.files)} config(s) invalid", file=sys.stderr)
    return 1 if failed else 0


def _plugins(args: argparse.Namespace, registry: Registry) -> int:
    print(f"aac-core {__version__}\n\nplugins:")
    infos = registry.plugin_infos()
    dist_width = max((len(info.distribution) for info in infos), default=0)
    for info in infos:
        disabled = "; ".join(f"{d.kind} '{d.name}' ({d.reason})" for d in registry.disabled if d.plugin == info.name)
        status = f"FAILED: {info.error}" if info.error else f"partly disabled: {disabled}" if disabled else "ok"
        print(f"  {info.name:<16} {info.distribution:<{dist_width}} {info.version:<10} {info.module}  [{status}]")
    print("\nalgorithms:")
    for spec in registry.algorithms.values():
        kind = "adaptive-level" if spec.adaptive else "fixed-level"
        print(f"  {spec.name:<20} {kind:<15} frameworks: {', '.join(sorted(spec.frameworks))}  ({spec.package or '?'})")
    print("\nbackends:")
    for backend in sorted(registry.backends.values(), key=lambda b: -b.priority):
        print(f"  {backend.name:<10} priority {backend.priority:<5} {backend.description}  ({backend.package or '?'})")
    print("\nsearch strategies:")
    for strategy in registry.search_strategies.values():
        print(f"  {strategy.name:<10} {strategy.description}")
    return 1 if registry.plugin_manager.failures or registry.disabled else 0


def _schema(args: argparse.Namespace, registry: Registry) -> int:
    text = json.dumps(compose_schema(registry.algorithms.values()), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aac", description="accuracy-aware compression")
    parser.add_argument("--version", action="version", version=f"aac-core {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check config files; exit 0 when all are valid")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    validate.set_defaults(handler=_validate)
    commands.add_parser("plugins", help="list plugins, algorithms, backends and search strategies").set_defaults(handler=_plugins)
    schema = commands.add_parser("schema", help="print the config JSON Schema composed from the installed plugins")
    schema.add_argument("-o", "--output", help="write to this file instead of standard output")
    schema.set_defaults(handler=_schema)
    return parser


def main(argv: Sequence[str] | None = None, registry: Registry | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores Python's showwarning when the command is done
        show_python_style = warnings.showwarning

        def show(
            message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None, line: str | None = None
        ) -> None:
            """A plugin warning is one line like the errors, not Python's file:line and source line."""
            if issubclass(category, AacPluginWarning):
                print(f"aac: warning: {message}", file=sys.stderr)
            else:
                show_python_style(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            return int(args.handler(args, registry or default_registry()))
        except AacError as exc:
            print(f"aac: error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # the reader went away (``aac schema | head``): not worth a traceback
            with contextlib.suppress(OSError, ValueError):  # keep the interpreter's final flush from failing again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1


if __name__ == "__main__":
    sys.exit(main())
