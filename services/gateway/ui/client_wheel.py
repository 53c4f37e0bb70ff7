"""The CLI as a wheel a user can `pip install`: built from this server's own code on demand.

It holds only what the client commands need (`artdag_cli` without the embedded launcher,
and the few `artdag_common` modules it imports), so it installs in seconds with two small
dependencies. The build is deterministic: the same code gives the same bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import zipfile
from pathlib import Path

from artdag_common import __version__

LIBS = Path(__file__).resolve().parents[3] / "libs"
DIST = "artdag_client"
MODULES = (
    "artdag_cli/__init__.py",
    "artdag_cli/client.py",
    "artdag_cli/main.py",
    "artdag_cli/progress.py",
    "artdag_common/__init__.py",
    "artdag_common/cid.py",
    "artdag_common/errors.py",
    "artdag_common/tokens.py",
)
REQUIRES = ("httpx>=0.27", "pyyaml>=6.0")
EPOCH = (1980, 1, 1, 0, 0, 0)


def wheel_name() -> str:
    return f"{DIST}-{__version__}-py3-none-any.whl"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


@functools.cache
def build_wheel() -> bytes:
    """The wheel's bytes (built once per process; the code cannot change under a running server)."""
    info = f"{DIST}-{__version__}.dist-info"
    files: list[tuple[str, bytes]] = [(name, (LIBS / name).read_bytes()) for name in MODULES]
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            "Name: artdag-client",
            f"Version: {__version__}",
            "Summary: The artdag command line client: render recipes, list runs, upload media on an artdag server",
            "Requires-Python: >=3.11",
            *(f"Requires-Dist: {req}" for req in REQUIRES),
            "",
        ]
    )
    files.append((f"{info}/METADATA", metadata.encode()))
    files.append(
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: artdag\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    )
    files.append((f"{info}/entry_points.txt", b"[console_scripts]\nartdag = artdag_cli.main:main\n"))
    record = [_record_line(name, data) for name, data in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            entry = zipfile.ZipInfo(name, EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return buffer.getvalue()
