"""Reads W&B's offline run files (``run-<id>.wandb``) into wandb's own protobuf records.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0) and then
LevelDB-log framed chunks (4-byte checksum, 2-byte little-endian length, 1-byte type: 1 full,
2 first, 3 middle, 4 last) in 32 KiB blocks, a block's tail shorter than a chunk header being
padding. Each record is a ``wandb_internal_pb2.Record``; wandb 0.31 ships no Python reader of it
(its Go core reads it), so this test-side framing reader stands in, decoding with wandb's schema.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<H", 0xBEE1) + b"\x00"
BLOCK = 32 * 1024
CHUNK_HEADER = 7


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data.startswith(HEADER), f"{path} is not a W&B transaction log"
    out, pos, parts = [], len(HEADER), b""
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # block padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        if pos + CHUNK_HEADER + length > len(data):
            break  # a chunk still being written
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            break  # zero fill: the end of what was written
        parts += chunk
        if kind in (1, 4):  # a record is complete
            out.append(wandb_internal_pb2.Record.FromString(parts))
            parts = b""
    return out


@dataclass
class OfflineRun:
    """What the offline attempts of one W&B run id recorded, merged in file order."""

    run_id: str
    group: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per history record
    summary: dict[str, Any] = field(default_factory=dict)
    exit_codes: list[int] = field(default_factory=list)

    def steps(self, key: str) -> list[int]:
        return [h["_step"] for h in self.history if key in h]

    def values(self, key: str) -> list[Any]:
        return [h[key] for h in self.history if key in h]


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def finished_records(path: Path, timeout_s: float = 20.0) -> list[Any]:
    """The records of an attempt that has ended (its ``exit`` record written): W&B's core process
    writes the file asynchronously, and may still be writing when ``finish()`` has returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        recs = records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in recs) or time.monotonic() > deadline:
            return recs
        time.sleep(0.05)


def offline_run(wandb_dir: Path, run_id: str) -> OfflineRun:
    """Every offline attempt of ``run_id`` (``offline-run-<time>-<id>``, ``-1``, ... when two
    start in the same second), merged in order."""
    files = sorted(Path(wandb_dir).glob(f"offline-run-*-{run_id}*/run-{run_id}.wandb"))
    assert files, f"no offline run {run_id} under {wandb_dir}"
    run = OfflineRun(run_id)
    for f in files:
        for r in finished_records(f):
            kind = r.WhichOneof("record_type")
            if kind == "run":
                run.group = r.run.run_group or run.group  # later run records may leave it out
                run.name = r.run.display_name or run.name
                for item in r.run.config.update:
                    run.config[_key(item)] = json.loads(item.value_json)
            elif kind == "config":
                for item in r.config.update:
                    run.config[_key(item)] = json.loads(item.value_json)
            elif kind == "history":
                row = {_key(i): json.loads(i.value_json) for i in r.history.item}
                row["_step"] = (
                    r.history.step.num if r.history.HasField("step") else row.get("_step")
                )
                run.history.append(row)
            elif kind == "summary":
                for item in r.summary.update:
                    run.summary[_key(item)] = json.loads(item.value_json)
            elif kind == "exit":
                run.exit_codes.append(r.exit.exit_code)
    return run
