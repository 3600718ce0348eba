"""Atomic file writes: a reader (or a crashed run being resumed) sees the old file or the new one, never half.

Each write is flushed to disk (``fsync``) before the rename, so that a power cut, not only a killed
process, leaves a whole file. ``AAC_FSYNC=0`` skips that flush: a killed process still leaves whole
files (the page cache survives it), which is all a test suite needs, and a run writes dozens of files.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: set to ``0`` to skip the flush to disk (tests); any other value, or unset, keeps it
FSYNC_ENV = "AAC_FSYNC"


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    ``write``'s return value is ignored (``handle.write`` returns the byte count).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; a plain open() would honour the umask
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if os.environ.get(FSYNC_ENV, "1") != "0":
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_leftover(path: Path) -> bool:
    """True for the temporary file of an atomic write that was killed before its rename."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
