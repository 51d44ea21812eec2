"""Reading a SQLite write-ahead log (``<db>-wal``) before SQLite does, to tell a cut or damaged one from a sound one.

SQLite replays a WAL up to the last complete transaction whose frames pass their checksums and silently ignores the
rest, so a WAL cut short by an interrupted copy or a full disk would lose the run's last writes without a word. The
format (sqlite.org/fileformat2.html#walformat): a 32-byte header (magic, version, page size, checkpoint sequence, two
salts, a checksum), then frames of a 24-byte header (page number, database size in pages for a commit frame else 0,
the two salts, a cumulative checksum) and one page. Frames whose salts differ from the header's are left over from
before the last checkpoint: the log ends there.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

_HEADER_BYTES, _FRAME_HEADER_BYTES = 32, 24
_MAGIC_LITTLE, _MAGIC_BIG = 0x377F0682, 0x377F0683   # byte order of the checksum words


@dataclass(frozen=True)
class WalState:
    size_bytes: int
    frames: int               # complete frames of the current log with good checksums
    committed_frames: int     # of those, the ones up to the last commit frame (what SQLite replays)
    committed_bytes: int      # file length up to the end of the last commit frame (header included)
    problem: str              # why the log is damaged or cut short ("" when it is sound)

    @property
    def uncommitted_frames(self) -> int:
        """Whole frames after the last commit: a transaction a stopped writer had not finished (nothing it reported
        written is lost)."""
        return self.frames - self.committed_frames


def _checksum(data: bytes, s0: int, s1: int, big_endian: bool) -> Tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def inspect_wal(path: Path) -> Optional[WalState]:
    """The state of the WAL at ``path``; None when there is none (or it is empty: nothing to replay)."""
    path = Path(path)
    if not path.is_file():
        return None
    data = path.read_bytes()
    size = len(data)
    if size == 0:
        return None
    if size < _HEADER_BYTES:
        return WalState(size, 0, 0, 0, f"cut short inside its {_HEADER_BYTES}-byte header ({size} bytes)")
    magic, _version, page_size, _seq, salt1, salt2, c0, c1 = struct.unpack(">8I", data[:_HEADER_BYTES])
    if magic not in (_MAGIC_LITTLE, _MAGIC_BIG):
        return WalState(size, 0, 0, 0, "its header is not a write-ahead log header")
    big = magic == _MAGIC_BIG
    s0, s1 = _checksum(data[:24], 0, 0, big)
    if (s0, s1) != (c0, c1):
        return WalState(size, 0, 0, 0, "its header fails its checksum")
    frame_bytes = _FRAME_HEADER_BYTES + page_size
    offset, frames, committed_frames, committed_bytes, problem = _HEADER_BYTES, 0, 0, _HEADER_BYTES, ""
    while offset + frame_bytes <= size:
        _page, commit_pages, f_salt1, f_salt2, f0, f1 = struct.unpack(">6I", data[offset:offset + 24])
        if (f_salt1, f_salt2) != (salt1, salt2):
            break                                      # left over from before the last checkpoint: the end
        n0, n1 = _checksum(data[offset:offset + 8], s0, s1, big)
        n0, n1 = _checksum(data[offset + 24:offset + frame_bytes], n0, n1, big)
        if (n0, n1) != (f0, f1):
            problem = f"frame {frames + 1} fails its checksum"
            break
        s0, s1 = n0, n1
        frames += 1
        offset += frame_bytes
        if commit_pages:
            committed_frames, committed_bytes = frames, offset
    else:
        if offset < size:
            problem = f"it ends inside frame {frames + 1} ({size - offset} of its {frame_bytes} bytes)"
    return WalState(size, frames, committed_frames, committed_bytes, problem)
