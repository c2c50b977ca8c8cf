"""Results on disk, keyed by the hash of their configuration and the library version.

A result (trained weights, diagnostics) is a dict of tensors, numbers, strings and lists. It is
stored at ``<root>/<namespace>/<key>.pt`` where ``key`` is the SHA-256 of the canonical JSON of
its configuration together with ``horizon_lib.__version__``:

* a changed configuration (or library version) gives another key, so an old result is never
  reused for it; the stored configuration is also compared on load, so not even a hash collision
  can hand back a result computed for something else;
* writes go to a temporary file in the same folder, then ``os.replace`` moves it into place
  (atomic on POSIX): a run killed mid-write leaves at most a ``.tmp-*`` file that is never read,
  and a result file that cannot be read back is treated as absent and recomputed;
* an interrupted grid resumes from what finished: every finished cell of the grid is a file.

The store is plain files in one folder, so several processes (or the workers of a distributed
executor sharing ``--results DIR``) can use one root at once: two workers computing the same key
both write complete files and the last ``os.replace`` wins with an identical result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["canonical_config", "config_key", "ResultCache"]


def _flock(fh) -> None:
    """Exclusive lock on an open file (released on close or process exit); no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX platforms compute concurrently
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)


def _plain(obj: Any) -> Any:
    """A JSON-ready, order-independent copy of a configuration."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return repr(obj)
        return float(obj)
    if isinstance(obj, torch.dtype):
        return str(obj)
    if torch.is_tensor(obj):
        return _plain(obj.tolist())
    if hasattr(obj, "item"):
        return _plain(obj.item())
    raise TypeError(f"cannot put a {type(obj).__name__} in a cache key")


def canonical_config(config: Any) -> str:
    """The canonical JSON text of a configuration (dataclasses, dicts, lists, numbers, strings)."""
    return json.dumps(_plain(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_key(config: Any, *, version: str | None = None) -> str:
    """SHA-256 (hex) of the canonical configuration and the library version.

    >>> config_key({"a": 1, "b": [1, 2]}, version="0") == config_key(
    ...     {"b": (1, 2), "a": 1}, version="0")
    True
    """
    if version is None:
        from . import __version__ as version
    text = canonical_config({"config": config, "library_version": version})
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """A folder of results keyed by configuration (see the module docstring).

    Args:
        root: the folder (created on first write), e.g. ``_build/results``.
        namespace: a sub-folder separating kinds of result (``"train"``, ``"diagnostics"``).
        version: library version mixed into every key (default: ``horizon_lib.__version__``).
    """

    def __init__(self, root: str | os.PathLike, namespace: str = "results", *,
                 version: str | None = None):
        if version is None:
            from . import __version__ as version
        if not namespace or "/" in namespace or namespace.startswith("."):
            raise ValueError(f"namespace must be a plain folder name; got {namespace!r}")
        self.folder = Path(root) / namespace
        self.version = str(version)

    def key(self, config: Any) -> str:
        return config_key(config, version=self.version)

    def path(self, config: Any) -> Path:
        return self.folder / f"{self.key(config)}.pt"

    def load(self, config: Any) -> Any | None:
        """The stored result for exactly this configuration, or ``None``.

        A file that cannot be read (truncated, corrupted) or whose stored configuration or
        version differs is not trusted: ``None`` is returned and the caller recomputes.
        """
        return self._read(self.path(config), config)

    def _read(self, path: Path, config: Any) -> Any | None:
        if not path.exists():
            return None
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 — any unreadable file is simply not a result
            return None
        if not isinstance(record, dict) or record.get("version") != self.version:
            return None
        if record.get("config") != canonical_config(config) or "result" not in record:
            return None
        return record["result"]

    def save(self, config: Any, result: Any) -> Path:
        """Store ``result`` for ``config`` atomically (temporary file, then ``os.replace``)."""
        return self._write(self.path(config), config, result)

    def _write(self, path: Path, config: Any, result: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"version": self.version, "config": canonical_config(config), "result": result}
        # a fresh name opened exclusively with mode 0o666 & ~umask, like any new file (mkstemp's
        # 0600 would hide results from workers of a shared folder running as other users)
        tmp = str(path.parent / f".tmp-{secrets.token_hex(8)}.pt")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(record, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    # ----------------------------------------------------------------- work in progress

    def partial_path(self, config: Any) -> Path:
        """Where the unfinished state of ``config``'s computation is kept (never a result)."""
        return self.folder / f"{self.key(config)}.partial.pt"

    def save_partial(self, config: Any, state: Any) -> Path:
        """Keep the state of an unfinished computation of ``config`` (atomic, like :meth:`save`),
        so that a run killed later resumes from it (:meth:`load_partial`)."""
        return self._write(self.partial_path(config), config, state)

    def load_partial(self, config: Any) -> Any | None:
        """The unfinished state saved for exactly this configuration, or ``None``."""
        return self._read(self.partial_path(config), config)

    def drop_partial(self, config: Any) -> None:
        """Forget the unfinished state of ``config`` (once its result is stored)."""
        self.partial_path(config).unlink(missing_ok=True)

    def get_or_compute(self, config: Any, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """``(result, was_cached)``: the stored result, or ``compute()`` saved then returned.

        While one process computes a key it holds an exclusive ``flock`` on ``<key>.lock``;
        another process asking for the same key waits and then loads the result instead of
        computing it again (chapters run in parallel share one grid). The kernel releases the
        lock when its holder dies, so a killed run never blocks a later one.
        """
        found = self.load(config)
        if found is not None:
            return found, True
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{self.key(config)}.lock", "a") as lock:
            _flock(lock)
            found = self.load(config)
            if found is not None:
                return found, True
            result = compute()
            self.save(config, result)
            return result, False

    def busy(self, config: Any) -> bool:
        """Whether another process is computing ``config`` now (holds its lock).

        A probe, not a reservation: the lock is taken without waiting and released at once, so
        a caller that finds the key free may still wait in :meth:`get_or_compute` if another
        process takes it in between. Without ``fcntl`` nothing is ever busy.
        """
        path = self.folder / f"{self.key(config)}.lock"
        if not path.exists():
            return False
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX platforms
            return False
        with open(path, "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    def __contains__(self, config: Any) -> bool:
        return self.load(config) is not None
