"""CPU seconds of a process tree, read from /proc (for the benchmarks that start a stack)."""

from __future__ import annotations

import os
from pathlib import Path


def descendants_cpu(root: int, *, include_root: bool = False) -> dict[str, float]:
    """CPU seconds (user + system, with their reaped children's) used so far by each process under
    `root` (and `root` itself with `include_root`), by label: the service's module, else the program."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tick = os.sysconf("SC_CLK_TCK")
    usage: dict[str, float] = {}
    for pid in parents:
        ancestor = pid if include_root else parents.get(pid, 0)
        while ancestor not in (0, 1, root):
            ancestor = parents.get(ancestor, 0)
        if ancestor != root:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        label = next((a.decode() for a in argv if a.startswith(b"services.")), Path(argv[0].decode()).name)
        usage[label] = usage.get(label, 0.0) + sum(int(v) for v in fields[11:15]) / tick
    return usage
