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
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import FacezooError, MissingExtraError
from .rows import FIXED_COLUMNS

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


class PartsFolder:
    """The parts folder of ``output`` (``OUT.parts``) for a run described by ``manifest``."""

    def __init__(self, output: Path, manifest: dict[str, Any]):
        self.output, self.manifest = output, manifest
        self.folder = output.with_name(output.name + ".parts")
        self.format = output_format(output)
        self.tasks: list[str] = manifest["tasks"]
        if self.format == ".parquet":
            self.schema = parquet_schema(self.tasks)

    def part(self, chunk: int) -> Path:
        return self.folder / f"part-{chunk:05d}{self.format}"

    def open(self, chunks: int) -> set[int]:
        """Record the settings (refusing others), drop unfinished temporary files; the finished chunks."""
        if self.output.is_dir():
            raise FacezooError(f"--output {str(self.output)!r} is a folder; give a file name such as faces.parquet")
        if not self.output.parent.is_dir():
            raise FacezooError(f"--output {str(self.output)!r}: the folder {str(self.output.parent)!r} does not exist")
        text = json.dumps(self.manifest, indent=1, sort_keys=True)
        manifest = self.folder / "manifest.json"
        if manifest.exists() and manifest.read_text() != text:
            old = json.loads(manifest.read_text())
            changed = sorted(k for k in {*old, *self.manifest} if old.get(k) != self.manifest.get(k))
            raise FacezooError(
                f"{self.folder} holds a run with other settings (they differ in: {', '.join(changed)}); resume with the same "
                "settings, or use another --output, or delete that folder to start afresh"
            )
        self.folder.mkdir(exist_ok=True)
        if not manifest.exists():
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text(text)
            _fsync_replace(tmp, manifest)
        for stale in self.folder.glob("*.tmp*"):
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
        shutil.rmtree(self.folder)
