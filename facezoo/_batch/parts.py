"""``OUT.parts/``: the finished chunks of a batch run, each an atomic part file, and the final file.

Chunk ``k`` (images ``k*chunk_size`` to ``(k+1)*chunk_size - 1`` of the sorted input list) is
written as ``part-0000k.EXT`` under a temporary name, flushed to disk and renamed, so a part
file is either complete or absent: a crashed run leaves only whole parts, and the next run
skips them. ``manifest.json`` holds the run's settings; a run with other settings is refused.
The final file is assembled from the parts in chunk order under a temporary name and renamed.

Formats: ``.jsonl`` (one JSON object per row, a task's result as a nested object) and
``.parquet`` (the schema of :func:`parquet_schema`; a task's result as JSON text).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import FacezooError, MissingExtraError
from .rows import FIXED_COLUMNS

logger = logging.getLogger(__name__)

FORMATS = (".jsonl", ".parquet")


def output_format(output: Path) -> str:
    """``".jsonl"`` or ``".parquet"`` from the output's name, or an error saying which to use."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise FacezooError(f"--output {str(output)!r}: unknown format {suffix or '(no extension)'!r}; name it OUT.jsonl or OUT.parquet")
    return suffix


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MissingExtraError("pyarrow", "batch", "writing or reading parquet") from None
    return pyarrow


def parquet_schema(tasks: Sequence[str]):
    """The Arrow schema of a run's parquet output: fixed face columns, one JSON-text column per task, error."""
    pa = _pyarrow()
    types = {
        "image": pa.string(),
        "status": pa.string(),
        "face_index": pa.int64(),
        "score": pa.float64(),
        "box": pa.list_(pa.float64()),
        "landmarks": pa.list_(pa.list_(pa.float64())),
    }
    return pa.schema([*(pa.field(c, types[c]) for c in FIXED_COLUMNS), *(pa.field(t, pa.string()) for t in tasks), pa.field("error", pa.string())])


def _fsync_replace(tmp: Path, target: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    tmp.replace(target)


LOCK = "lock"


def _lock_file(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False if another process holds it.
    The system drops the lock when its process ends, however it ends, so a lock cannot go stale."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to rely on
        logger.warning("this platform has no file locks (fcntl): nothing stops two runs writing one output at once")
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class PartsFolder:
    """The parts folder of ``output`` (``OUT.parts``): its lock, the run's settings and its finished parts.

    Use: :meth:`check` (before any work), :meth:`lock`, :meth:`open` with the run's settings,
    then :meth:`write` each chunk, :meth:`assemble`, and :meth:`remove` or :meth:`release`.
    """

    def __init__(self, output: Path):
        self.output = output
        self.folder = output.with_name(output.name + ".parts")
        self.format = output_format(output)
        self.manifest: dict[str, Any] = {}
        self.tasks: list[str] = []
        self._lock: int | None = None

    def part(self, chunk: int) -> Path:
        return self.folder / f"part-{chunk:05d}{self.format}"

    def _ours(self, path: Path) -> bool:
        """A file this module writes in the parts folder."""
        return path.name in ("manifest.json", LOCK) or path.name.startswith("part-")

    def check(self, overwrite: bool) -> None:
        """Refuse, before any work, an output that cannot be written or that would replace a file
        the user did not ask to replace (``overwrite``); a parts folder holding a run may be resumed."""
        where = f"--output {str(self.output)!r}"
        if self.output.is_dir():
            raise FacezooError(f"{where} is a folder; give a file name such as faces.parquet")
        if not self.output.parent.is_dir():
            raise FacezooError(f"{where}: the folder {str(self.output.parent)!r} does not exist")
        if self.folder.exists() and not self.folder.is_dir():
            raise FacezooError(f"{where}: {str(self.folder)!r}, where a run keeps its parts, is a file; move it or choose another --output")
        if self.folder.is_dir() and not (self.folder / "manifest.json").exists() and any(not self._ours(p) for p in self.folder.iterdir()):
            raise FacezooError(f"{where}: the folder {str(self.folder)!r} holds files that are not a facezoo batch run's; move it or choose another --output")
        for folder in (self.output.parent, self.folder):
            if folder.is_dir():
                try:
                    probe, name = tempfile.mkstemp(dir=folder, prefix=f".{self.output.name}.", suffix=".probe")
                except OSError as exc:
                    raise FacezooError(f"{where}: cannot write in {str(folder)!r} ({exc.strerror}); choose a folder you can write to") from None
                os.close(probe)
                os.unlink(name)
        resuming = (self.folder / "manifest.json").exists()
        if self.output.exists() and not resuming and not overwrite:
            raise FacezooError(f"{where} exists already; choose another name, or pass --overwrite (overwrite=True) to replace it")

    def lock(self) -> None:
        """Hold ``OUT.parts/lock`` (with this process's id and host) for the run, or say which run holds it.

        A lock file left by a run that was killed is taken over, with a message naming that run.
        """
        path = self.folder / LOCK
        me = f"pid {os.getpid()} on {socket.gethostname()}"
        while True:
            self.folder.mkdir(exist_ok=True)  # again after a run that just ended removed it
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            previous = os.read(fd, 200).decode("utf-8", "replace").strip()
            if not _lock_file(fd):
                os.close(fd)
                raise FacezooError(
                    f"another run ({previous or 'starting'}) is writing --output {str(self.output)!r}: it holds {path}. Wait for it to "
                    "end, or choose another --output"
                )
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # else the lock file was removed by a run that just ended: take the new one
                break
            os.close(fd)
        if previous:
            logger.warning("taking over %s from the run of %s, which ended without releasing it (killed?)", path, previous)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{me}\n".encode())
        os.fsync(fd)
        self._lock = fd

    def release(self) -> None:
        """Give up the lock (removing its file), and the parts folder if nothing else is in it."""
        if self._lock is None:
            return
        (self.folder / LOCK).unlink(missing_ok=True)
        os.close(self._lock)
        self._lock = None
        try:
            self.folder.rmdir()
        except OSError:  # it holds the run's parts
            pass

    def open(self, manifest: dict[str, Any], chunks: int) -> set[int]:
        """Record the run's settings ``manifest`` (refusing others), drop unfinished temporary files; the finished chunks."""
        self.manifest, self.tasks = manifest, manifest["tasks"]
        if self.format == ".parquet":
            self.schema = parquet_schema(self.tasks)
        text = json.dumps(manifest, indent=1, sort_keys=True)
        path = self.folder / "manifest.json"
        if path.exists() and path.read_text() != text:
            old = json.loads(path.read_text())
            changed = sorted(k for k in {*old, *manifest} if old.get(k) != manifest.get(k))
            raise FacezooError(
                f"{self.folder} holds a run with other settings (they differ in: {', '.join(changed)}); resume with the same "
                "settings, or use another --output, or delete that folder to start afresh"
            )
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            _fsync_replace(tmp, path)
        for stale in self.folder.glob("*.tmp*"):  # left by a run that was killed: the lock says no run is writing them
            stale.unlink()
        return {k for k in range(chunks) if self.part(k).exists()}

    def write(self, chunk: int, rows: list[dict[str, Any]]) -> None:
        """Write chunk ``chunk``'s rows as its part file, atomically."""
        target = self.part(chunk)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        if self.format == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows)
        else:
            import pyarrow.parquet as pq

            pa = _pyarrow()
            data = {c: [row[c] for row in rows] for c in self.schema.names}
            for task in self.tasks:
                data[task] = [None if v is None else json.dumps(v, ensure_ascii=False, allow_nan=False) for v in data[task]]
            pq.write_table(pa.Table.from_pydict(data, schema=self.schema), tmp)
        _fsync_replace(tmp, target)

    def statuses(self, chunk: int) -> Counter:
        """How many rows of each status a finished part holds."""
        if self.format == ".jsonl":
            with open(self.part(chunk), encoding="utf-8") as handle:
                return Counter(json.loads(line)["status"] for line in handle)
        import pyarrow.parquet as pq

        return Counter(pq.read_table(self.part(chunk), columns=["status"]).column("status").to_pylist())

    def assemble(self, chunks: int) -> None:
        """Write the output file from the parts in chunk order, atomically."""
        tmp = self.output.with_name(f"{self.output.name}.tmp-{os.getpid()}")
        if self.format == ".jsonl":
            with open(tmp, "wb") as out:
                for k in range(chunks):
                    with open(self.part(k), "rb") as part:
                        shutil.copyfileobj(part, out)
        else:
            import pyarrow.parquet as pq

            schema = self.schema.with_metadata({"facezoo.batch": json.dumps(self.manifest, sort_keys=True)})
            with pq.ParquetWriter(tmp, schema) as writer:
                for k in range(chunks):
                    writer.write_table(pq.read_table(self.part(k)).replace_schema_metadata(schema.metadata))
        _fsync_replace(tmp, self.output)

    def remove(self) -> None:
        """Delete the parts, the settings and the lock; a parts folder that holds other files too is kept, with a warning."""
        for path in self.folder.iterdir():
            if path.name != LOCK and self._ours(path):
                path.unlink()
        self.release()
        if self.folder.exists():
            logger.warning("kept %s: it holds files that facezoo batch did not write", self.folder)
