"""Content-addressed model store on the board's disk: survives restarts, bounded by a quota with LRU eviction.

Layout under ``root``: ``models/<sha256>.model`` (the bytes) and ``models/<sha256>.json`` (format, name, times).
Uploads are written to ``incoming/``, hashed as they stream, checked (size, sha256, the format's container) and only
then renamed into place, so a broken or interrupted upload never shows up as a model. Models being measured are
pinned and never evicted. Thread-safe: one lock guards the index.

Eviction is least-recently-used by a counter (``last_used_seq``, bumped on every upload and use, kept in the
metadata), so order holds within a second; it makes room for the quota and for free disk space (``min_free_bytes``
left on the store's filesystem). A full disk during an upload evicts and retries once, then answers Busy
(RESOURCE_EXHAUSTED) saying so. Bookkeeping (the last-used time and counter) is best effort: failing to write it is
logged and never fails the measurement that used the model.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import mmap
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from fleetnas.agent.errors import Busy, InvalidModel, InvalidRequest, ModelNotFound
from fleetnas.agent.private_files import open_private, private_dir, write_private
from fleetnas.agent.store.formats import check_format_name, check_model

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger("fleetnas.agent")
DEFAULT_MIN_FREE_BYTES = 16 * 2**20  # left free on the store's filesystem for logs, metadata and the system


class DiskFull(Busy):
    """No space left on the store's disk, even after evicting what could be evicted (RESOURCE_EXHAUSTED)."""


@dataclass(frozen=True)
class StoredModel:
    sha256: str
    size_bytes: int
    format: str          # a name in fleetnas.agent.store.formats.FORMATS
    name: str
    stored_unix_s: int
    last_used_unix_s: int
    last_used_seq: int = 0   # LRU order; 0 for metadata written before the counter existed (then by time)

    @property
    def lru_key(self) -> Tuple[int, int]:
        return self.last_used_seq, self.last_used_unix_s


def check_sha256(sha256: str) -> str:
    sha = sha256.strip().lower()
    if not _SHA256.match(sha):
        raise InvalidRequest(f"model sha256 must be 64 hex characters, got {sha256!r}")
    return sha


class Upload:
    """One streaming upload: ``write`` chunks, then ``commit`` (or ``abort``). Use ``ModelStore.begin_upload``."""

    def __init__(self, store: "ModelStore", sha256: str, size_bytes: int, fmt: str, name: str) -> None:
        self._store, self.sha256, self.size_bytes, self.format, self.name = store, sha256, size_bytes, fmt, name
        self._hash = hashlib.sha256()
        self._received = 0
        self._evicted: List[str] = []
        self._tmp = store.incoming_dir / f"{uuid.uuid4().hex}.part"
        self._file = open_private(self._tmp)  # unbuffered: a full disk shows at the write that hit it

    def write(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.size_bytes:
            raise InvalidModel(f"upload is longer than the declared size_bytes={self.size_bytes}")
        self._hash.update(chunk)
        view, retried = memoryview(chunk), False
        while view:
            try:
                view = view[self._file.write(view):]
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                if retried:
                    raise self._store.disk_full_error(self.size_bytes) from None
                retried = True  # evict for what is still to come, then try once more
                self._evicted += self._store.free_disk(self.size_bytes - self._received + len(view))

    def commit(self) -> Tuple[StoredModel, List[str]]:
        """Verify and store; returns the model and the sha256s evicted to make room."""
        try:
            self._file.close()
            if self._received != self.size_bytes:
                raise InvalidModel(f"upload truncated: got {self._received} of the declared {self.size_bytes} bytes")
            actual = self._hash.hexdigest()
            if actual != self.sha256:
                raise InvalidModel(f"model sha256 mismatch: expected {self.sha256}, got {actual}")
            fmt = _check_file(self._tmp, self.format)
            model, evicted = self._store._adopt(self._tmp, self.sha256, self.size_bytes, fmt, self.name)
            return model, self._evicted + evicted
        finally:
            self.abort()

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


def _check_file(path: Path, declared_format: str) -> str:
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise InvalidModel("empty upload: the model file has no bytes")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return check_model(data, declared_format)  # type: ignore[arg-type]
            except ValueError as exc:
                raise InvalidModel(str(exc)) from None


class ModelStore:
    def __init__(self, root: Path, quota_bytes: int, max_upload_bytes: Optional[int] = None,
                 min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> None:
        if quota_bytes <= 0:
            raise ValueError(f"store quota must be > 0 bytes, got {quota_bytes}")
        self.min_free_bytes = max(int(min_free_bytes), 0)
        self.root = Path(root).expanduser()
        self.models_dir = self.root / "models"
        self.incoming_dir = self.root / "incoming"
        self.quota_bytes = quota_bytes
        self.max_upload_bytes = min(max_upload_bytes or quota_bytes, quota_bytes)
        self._lock = threading.Lock()
        self._pins: Dict[str, int] = {}
        for directory in (self.root, self.models_dir, self.incoming_dir):
            private_dir(directory)
        for stale in self.incoming_dir.iterdir():  # uploads cut off by a restart
            stale.unlink()
        self._index: Dict[str, StoredModel] = self._scan()
        self._seq = max((m.last_used_seq for m in self._index.values()), default=0)

    # ------------------------------------------------------------------ queries
    def get(self, sha256: str) -> Optional[StoredModel]:
        with self._lock:
            return self._index.get(check_sha256(sha256))

    def list(self) -> List[StoredModel]:
        with self._lock:
            return sorted(self._index.values(), key=lambda m: m.lru_key, reverse=True)

    def used_bytes(self) -> int:
        with self._lock:
            return self._used_bytes()

    # ------------------------------------------------------------------ changes
    def begin_upload(self, sha256: str, size_bytes: int, fmt: str, name: str = "") -> Upload:
        sha = check_sha256(sha256)
        if size_bytes <= 0:
            raise InvalidModel(f"size_bytes must be > 0 in the upload header, got {size_bytes}")
        if size_bytes > self.max_upload_bytes:
            raise InvalidModel(f"model of {size_bytes} bytes exceeds this agent's upload limit of "
                               f"{self.max_upload_bytes} bytes (raise --cache-quota-mb / --max-upload-mb)")
        try:
            check_format_name(fmt)
        except ValueError as exc:
            raise InvalidModel(str(exc)) from None
        with self._lock:  # refuse at once what could never fit, even with every unpinned model evicted
            evictable = sum(m.size_bytes for m in self._index.values() if m.sha256 not in self._pins)
            if self._disk_free_bytes() + evictable < size_bytes + self.min_free_bytes:
                raise self.disk_full_error(size_bytes)
        try:
            return Upload(self, sha, size_bytes, fmt, name[:200])
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self.disk_full_error(size_bytes) from None
            raise

    def free_disk(self, needed_bytes: int) -> List[str]:
        """Evict least-recently-used unpinned models until ``needed_bytes`` (plus the reserve) are free on disk."""
        with self._lock:
            return self._evict_while(lambda: self._disk_free_bytes() < needed_bytes + self.min_free_bytes)

    def disk_full_error(self, size_bytes: int) -> DiskFull:
        free = self._disk_free_bytes()
        return DiskFull(f"not enough disk space on this agent for a model of {size_bytes} bytes: {free} bytes free "
                        f"(keeping {self.min_free_bytes} in reserve) after evicting every model not in use; "
                        "free space on the board or lower --cache-quota-mb")

    def delete(self, sha256: str) -> bool:
        sha = check_sha256(sha256)
        with self._lock:
            if sha in self._pins:
                raise Busy(f"model {sha[:12]} is being measured; delete it afterwards")
            if self._index.pop(sha, None) is None:
                return False
            self._remove_files(sha)
            return True

    @contextlib.contextmanager
    def use(self, sha256: str) -> Iterator[Tuple[Path, StoredModel]]:
        """Pin a model while it is measured (no eviction) and mark it used (LRU)."""
        sha = check_sha256(sha256)
        with self._lock:
            model = self._index.get(sha)
            if model is None:
                raise ModelNotFound(f"model {sha} is not on this agent: call UploadModel first")
            self._seq += 1
            model = replace(model, last_used_unix_s=int(time.time()), last_used_seq=self._seq)
            self._index[sha] = model
            self._pins[sha] = self._pins.get(sha, 0) + 1
            try:
                self._write_meta(model)
            except OSError as exc:  # bookkeeping only: the model itself is intact, measure it anyway
                log.warning("could not record last use of model %s: %s", sha[:12], exc.strerror or exc)
        try:
            yield self._model_path(sha), model
        finally:
            with self._lock:
                self._pins[sha] -= 1
                if not self._pins[sha]:
                    del self._pins[sha]

    # ------------------------------------------------------------------ internals
    def _adopt(self, tmp: Path, sha: str, size_bytes: int, fmt: str, name: str) -> Tuple[StoredModel, List[str]]:
        now = int(time.time())
        with self._lock:
            existing = self._index.get(sha)
            if existing is not None:
                return existing, []
            evicted = self._make_room(size_bytes)
            self._seq += 1
            model = StoredModel(sha, size_bytes, fmt, name, now, now, self._seq)
            os.replace(tmp, self._model_path(sha))
            try:
                self._write_meta(model)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                evicted += self._evict_while(lambda: True, limit=1)  # a few bytes of metadata: one model frees them
                try:
                    self._write_meta(model)
                except OSError:
                    self._remove_files(sha)
                    raise self.disk_full_error(size_bytes) from None
            self._index[sha] = model
            return model, evicted

    def _make_room(self, size_bytes: int) -> List[str]:
        """Evict for the quota, and for the disk's reserve (the new model's bytes are already on the disk)."""
        evicted = self._evict_while(lambda: self._used_bytes() + size_bytes > self.quota_bytes)
        if self._used_bytes() + size_bytes > self.quota_bytes:
            raise Busy(f"model store is full: {self._used_bytes()} of {self.quota_bytes} bytes hold models being "
                       "measured")
        return evicted + self._evict_while(lambda: self._disk_free_bytes() < self.min_free_bytes)

    def _evict_while(self, needs_room, limit: Optional[int] = None) -> List[str]:
        """Evict unpinned models, least recently used first, while ``needs_room()``; caller holds the lock."""
        evicted: List[str] = []
        for victim in sorted(self._index.values(), key=lambda m: m.lru_key):
            if not needs_room() or (limit is not None and len(evicted) >= limit):
                break
            if victim.sha256 in self._pins:
                continue
            del self._index[victim.sha256]
            self._remove_files(victim.sha256)
            evicted.append(victim.sha256)
            log.info("evicted model %s (%d bytes) to make room", victim.sha256[:12], victim.size_bytes)
        return evicted

    def _used_bytes(self) -> int:
        return sum(m.size_bytes for m in self._index.values())

    def _disk_free_bytes(self) -> int:
        try:
            st = os.statvfs(self.root)
        except OSError:
            return 1 << 62  # cannot tell: let the write itself find out
        return st.f_bavail * st.f_frsize

    def _model_path(self, sha: str) -> Path:
        return self.models_dir / f"{sha}.model"

    def _write_meta(self, model: StoredModel) -> None:
        write_private(self.models_dir / f"{model.sha256}.json", json.dumps(asdict(model), sort_keys=True).encode())

    def _remove_files(self, sha: str) -> None:
        for suffix in (".model", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (self.models_dir / f"{sha}{suffix}").unlink()

    def _scan(self) -> Dict[str, StoredModel]:
        index = {}
        for meta in self.models_dir.glob("*.json"):
            sha = meta.stem
            path = self._model_path(sha)
            try:
                model = StoredModel(**json.loads(meta.read_text()))
                ok = model.sha256 == sha and path.stat().st_size == model.size_bytes
            except (OSError, ValueError, TypeError):
                ok = False
            if ok:
                index[sha] = model
            else:  # half-written or foreign: drop rather than serve something unverified
                self._remove_files(sha)
        for orphan in self.models_dir.glob("*.model"):
            if orphan.stem not in index:
                orphan.unlink()
        return index
