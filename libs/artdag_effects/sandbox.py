"""Python effects: a `process_frame` module run in a bubblewrap sandbox, off unless an admin enables it.

A Python effect is a source file stored by CID like any user effect, recognised by its first line:
`# artdag: python-effect` (or a PEP 723 `# /// script` block). Its header is read without running it
(`ast`): the PEP 723 block's `dependencies` (each must be on the admin's approved list: nothing is
ever installed) and a literal `META = {"name": …, "description": …, "params": {…}}`.

Running it (`SandboxedEffect`, built by the effect's factory, so one process per step run): `bwrap`
with every namespace unshared (no network, its own PIDs), all capabilities dropped, a seccomp filter
(no fork, no sockets but Unix ones, no mounts, no ptrace), an empty read-only root holding only
/usr, the interpreter and the approved packages, a small tmpfs at /scratch as the only writable
place, and a cleared environment. Inside, `sandbox_runner` lowers its CPU-time and memory limits
before it reads the effect, then frames go both ways through pipes as raw RGB. The parent gives
each frame a wall-clock limit and kills the sandbox when it is exceeded; whatever comes back is
checked (exactly height·width·3 bytes), and anything else ends the run with an error that names
the effect and the frame. `sandbox_scope` closes the processes started within it.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import tomllib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, create_model

from artdag_common.errors import InvalidInputError, PermanentError
from artdag_effects import sandbox_runner as runner
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect, Rgb

if TYPE_CHECKING:
    from artdag_common.settings import CommonSettings

MARK = "# artdag: python-effect"
"""The first line that makes a source a Python effect (a PEP 723 `# /// script` line does too)."""

PYTHON_EFFECT_VERSION = "python-1"
"""The version of how Python effects are run; a step's id includes it, and the effect's CID."""

ALWAYS_APPROVED = frozenset({"numpy"})
"""Packages every Python effect may import: frames reach `process_frame` as numpy arrays."""

MAX_PARAMS = 32
MAX_DEPENDENCIES = 32
SCRATCH_BYTES = 64 * 2**20
"""The size of the tmpfs mounted at /scratch, the one place an effect may write."""

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")
# PEP 723's reference expression for an inline metadata block.
_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


def package_name(name: str) -> str:
    """A distribution name in its normal form (PEP 503): `Scikit_Image` → `scikit-image`."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PythonEffectPolicy:
    """Python effects are on, with these packages importable and these limits (what an admin set).

    `None` in its place means they are off. `cpu_s` is the CPU time of a whole run, `memory_mib`
    its address space and `wall_s` the wall-clock time setup or any one frame may take.
    """

    approved: frozenset[str] = ALWAYS_APPROVED
    cpu_s: int = 300
    memory_mib: int = 1024
    wall_s: float = 30.0

    @classmethod
    def of(cls, settings: CommonSettings) -> PythonEffectPolicy | None:
        """The policy `ARTDAG_PYTHON_EFFECT*` set, or None when Python effects are off."""
        if not settings.python_effects:
            return None
        names = {package_name(n.strip()) for n in settings.python_effect_deps.split(",") if n.strip()}
        return cls(
            approved=frozenset(names) | ALWAYS_APPROVED,
            cpu_s=settings.python_effect_cpu_s,
            memory_mib=settings.python_effect_memory_mib,
            wall_s=settings.python_effect_wall_s,
        )


OFF_MESSAGE = "Python effects are off on this server (an admin turns them on with ARTDAG_PYTHON_EFFECTS=1)"


def is_python_effect(text: str) -> bool:
    """Whether a source is a Python effect: its first line is `MARK` or opens a PEP 723 block."""
    first = text.removeprefix("\ufeff").split("\n", 1)[0].rstrip("\r \t")
    return first in (MARK, "# /// script")


# -- the header, read without running anything ---------------------------------------------------


def _error(line: int, column: int, message: str) -> InvalidInputError:
    return InvalidInputError(f"line {line}, column {column}: {message}", field="source")


def _at(node: ast.AST, message: str) -> InvalidInputError:
    return _error(getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1, message)


ParamKind = Literal["float", "int", "bool", "color", "choice"]


@dataclass(frozen=True)
class PythonParam:
    """A declared parameter of a Python effect (the same fields as the effect language's, and `choices`)."""

    name: str
    kind: ParamKind
    default: float | int | bool | str | tuple[int, int, int]
    low: float | None = None
    high: float | None = None
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class PythonEffect:
    """A Python effect's header, checked, and its source."""

    name: str
    description: str
    params: tuple[PythonParam, ...]
    dependencies: tuple[str, ...]
    source: str
    dependencies_line: int = 1

    def params_model(self) -> type[BaseModel]:
        """The pydantic model of the declared parameters (strict, finite, defaults filled)."""
        fields: dict[str, Any] = {}
        for p in self.params:
            info = Field(p.default, description=p.description)
            if p.kind == "color":
                fields[p.name] = (Rgb, info)
            elif p.kind == "choice":
                fields[p.name] = (Literal[p.choices], info)
            elif p.kind == "bool":
                fields[p.name] = (bool, info)
            else:
                bounds = Field(p.default, ge=p.low, le=p.high, description=p.description)
                fields[p.name] = (float if p.kind == "float" else int, bounds)
        model: type[BaseModel] = create_model(
            "PythonEffectParams", __base__=EffectParams, __config__=None, __module__=__name__, **fields
        )
        return model

    def spec(self, cid: str, policy: PythonEffectPolicy) -> EffectSpec:
        """The effect as the renderer runs it, under its CID: each run starts its own sandbox."""

        def factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
            return SandboxedEffect(self, cid, policy, setup)

        return EffectSpec(
            name=cid,
            version=PYTHON_EFFECT_VERSION,
            params_model=self.params_model(),
            description=self.description or f"{self.name} (a Python effect)",
            factory=factory,
            temporal=True,  # its `state` goes from frame to frame: one pass over the whole input
        )


def _literal_keys(node: ast.expr) -> dict[str, ast.expr]:
    """The values of a dict display by their string keys (for errors that say where)."""
    if not isinstance(node, ast.Dict):
        return {}
    return {
        k.value: v
        for k, v in zip(node.keys, node.values, strict=True)
        if isinstance(k, ast.Constant) and isinstance(k.value, str)
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _param(name: str, spec: Any, node: ast.expr) -> PythonParam:
    where = _literal_keys(node)
    if not _PARAM_NAME.fullmatch(name):
        raise _at(node, f"parameter {name!r}: a name is lower-case letters, digits and '_', starting with a letter")
    if not isinstance(spec, dict):
        raise _at(node, f'parameter {name!r} is a dict: {{"type": "float", "default": 1.0, "range": [0, 2]}}')
    unknown = set(spec) - {"type", "default", "range", "choices", "description"}
    if unknown:
        raise _at(node, f"parameter {name!r}: unknown key {sorted(map(str, unknown))[0]!r}")
    if "default" not in spec:
        raise _at(node, f"parameter {name!r} needs a default")
    default = spec["default"]
    at_default = where.get("default", node)
    kind = spec.get("type")
    if kind is None:
        kind = (
            "bool"
            if isinstance(default, bool)
            else "int"
            if isinstance(default, int)
            else "choice"
            if isinstance(default, str)
            else "color"
            if isinstance(default, list | tuple)
            else "float"
        )
    if kind not in ("float", "int", "bool", "color", "choice"):
        raise _at(where.get("type", node), f"parameter {name!r}: type is float, int, bool, color or choice")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise _at(where.get("description", node), f"parameter {name!r}: description is a string")
    if kind != "choice" and "choices" in spec:
        raise _at(where["choices"], f"parameter {name!r}: choices are for a choice parameter")
    if kind not in ("float", "int") and "range" in spec:
        raise _at(where["range"], f"parameter {name!r}: a range is for a number")
    if kind == "bool":
        if not isinstance(default, bool):
            raise _at(at_default, f"parameter {name!r}: the default is True or False")
        return PythonParam(name, "bool", default, description=description[:500])
    if kind == "color":
        if not (
            isinstance(default, list | tuple)
            and len(default) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in default)
        ):
            raise _at(at_default, f"parameter {name!r}: a colour default is [r, g, b], each 0..255")
        return PythonParam(name, "color", (default[0], default[1], default[2]), description=description[:500])
    if kind == "choice":
        choices = spec.get("choices")
        if not (
            isinstance(choices, list | tuple)
            and 0 < len(choices) <= 64
            and all(isinstance(c, str) and 0 < len(c) <= 64 for c in choices)
        ):
            raise _at(where.get("choices", node), f"parameter {name!r}: choices are a list of strings")
        if default not in choices:
            raise _at(at_default, f"parameter {name!r}: the default {default!r} is not one of its choices")
        return PythonParam(name, "choice", default, description=description[:500], choices=tuple(choices))
    low = high = None
    if "range" in spec:
        bounds = spec["range"]
        if not (isinstance(bounds, list | tuple) and len(bounds) == 2 and all(map(_number, bounds))):
            raise _at(where["range"], f"parameter {name!r}: a range is [low, high], two finite numbers")
        low, high = float(bounds[0]), float(bounds[1])
        if low > high:
            raise _at(where["range"], f"parameter {name!r}: its range [{low:g}, {high:g}] is empty")
    if not _number(default) or (kind == "int" and not isinstance(default, int)):
        raise _at(at_default, f"parameter {name!r}: the default is a finite {'integer' if kind == 'int' else 'number'}")
    if (low is not None and default < low) or (high is not None and default > high):
        raise _at(at_default, f"parameter {name!r}: the default {default:g} is outside its range")
    if kind == "int":
        return PythonParam(name, "int", int(default), low, high, description[:500])
    return PythonParam(name, "float", float(default), low, high, description[:500])


def _meta(node: ast.expr) -> tuple[str, str, tuple[PythonParam, ...]]:
    try:
        meta = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise _at(node, "META is a literal dict (strings, numbers, lists and dicts only: nothing computed)") from None
    if not isinstance(meta, dict):
        raise _at(node, 'META is a dict: {"name": "invert", "params": {…}}')
    where = _literal_keys(node)
    unknown = set(meta) - {"name", "description", "params", "version", "author"}
    if unknown:
        raise _at(node, f"META: unknown key {sorted(map(str, unknown))[0]!r} (name, description, params)")
    name = meta.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _at(where.get("name", node), "META needs a name: lower-case letters, digits, '-' and '_'")
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise _at(where["description"], "META's description is a string")
    raw = meta.get("params", {})
    if not isinstance(raw, dict):
        raise _at(where["params"], "META's params is a dict of parameter names to their declarations")
    if len(raw) > MAX_PARAMS:
        raise _at(where["params"], f"at most {MAX_PARAMS} parameters")
    at_params = _literal_keys(where.get("params", node))
    params = []
    for key, spec in raw.items():
        if not isinstance(key, str):
            raise _at(where["params"], f"a parameter's name is a string, not {key!r}")
        params.append(_param(key, spec, at_params.get(key, node)))
    return name, description[:500], tuple(params)


def _dependencies(text: str) -> tuple[tuple[str, ...], int]:
    """The PEP 723 block's dependencies (normalised names) and the block's first line."""
    blocks = [m for m in _BLOCK.finditer(text) if m.group("type") == "script"]
    if not blocks:
        return (), 1
    if len(blocks) > 1:
        line = text.count("\n", 0, blocks[1].start()) + 1
        raise _error(line, 1, "a second `# /// script` block (PEP 723 allows one)")
    block = blocks[0]
    line = text.count("\n", 0, block.start()) + 1
    content = "".join(
        row[2:] if row.startswith("# ") else row[1:] for row in block.group("content").splitlines(keepends=True)
    )
    try:
        table = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise _error(line, 1, f"the `# /// script` block is not valid TOML: {exc}") from None
    raw = table.get("dependencies", [])
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise _error(line, 1, 'dependencies is a list of package names, like ["numpy"]')
    if len(raw) > MAX_DEPENDENCIES:
        raise _error(line, 1, f"at most {MAX_DEPENDENCIES} dependencies")
    names = []
    for requirement in raw:
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise _error(line, 1, f"dependency {requirement[:80]!r} is not a package requirement")
        names.append(package_name(match.group(1)))
    return tuple(dict.fromkeys(names)), line


def parse_python_effect(text: str) -> PythonEffect:
    """Read a Python effect's header without running it; `InvalidInputError` (field `source`) says where it is wrong.

    The module must define `process_frame(frame, params, state)` at its top level and assign
    `META` a literal dict; the PEP 723 block, if any, lists its dependencies.
    """
    try:
        tree = ast.parse(text, filename=runner.EFFECT_FILE)
    except SyntaxError as exc:
        raise _error(exc.lineno or 1, exc.offset or 1, f"Python syntax: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InvalidInputError(f"the source cannot be read as Python ({type(exc).__name__})", field="source") from None
    dependencies, dependencies_line = _dependencies(text)
    meta: ast.expr | None = None
    process: ast.AST | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "META" for t in node.targets):
            if meta is not None:
                raise _at(node, "META is assigned twice")
            meta = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "META":
            if meta is not None or node.value is None:
                raise _at(node, "META is assigned once, to a literal dict")
            meta = node.value
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "process_frame":
            if isinstance(node, ast.AsyncFunctionDef):
                raise _at(node, "process_frame is a plain function, not async")
            args = node.args
            if len(args.posonlyargs) + len(args.args) < 3 and args.vararg is None:
                raise _at(node, "process_frame takes (frame, params, state)")
            process = node
    if process is None:
        raise _error(1, 1, "a Python effect defines process_frame(frame, params, state) at its top level")
    if meta is None:
        raise _error(1, 1, 'a Python effect declares META = {"name": …, "params": {…}} at its top level')
    name, description, params = _meta(meta)
    return PythonEffect(name, description, params, dependencies, text, dependencies_line)


@functools.cache
def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def check_python_effect(text: str, policy: PythonEffectPolicy | None) -> PythonEffect:
    """`parse_python_effect`, refused when Python effects are off or a dependency is not approved.

    What an upload calls (nothing runs): every error is an `InvalidInputError` naming `source`.
    """
    if policy is None:
        raise InvalidInputError(OFF_MESSAGE, field="source")
    effect = parse_python_effect(text)
    for name in effect.dependencies:
        if name not in policy.approved:
            approved = ", ".join(sorted(policy.approved))
            raise _error(
                effect.dependencies_line,
                1,
                f"dependency {name!r} is not on this server's approved list ({approved}; "
                "ARTDAG_PYTHON_EFFECT_DEPS): nothing is ever installed for an effect",
            )
        if not _installed(name):
            raise _error(effect.dependencies_line, 1, f"dependency {name!r} is approved but not installed here")
    return effect


# -- the sandbox ---------------------------------------------------------------------------------

_SECCOMP = struct.Struct("<HBBI")
_LD_ABS, _JEQ, _JSET, _RET = 0x20, 0x15, 0x45, 0x06
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_AF_UNIX, _CLONE_THREAD = 1, 0x00010000
_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Each call the filter looks at: its number on x86_64 and on aarch64 (None: no such call there).
# Those past the first three are denied outright (EPERM).
_SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    "clone": (56, 220),
    "clone3": (435, 435),
    "socket": (41, 198),
    "fork": (57, None),
    "vfork": (58, None),
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "io_uring_setup": (425, 425),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
}
_ARCH_INDEX = {"x86_64": 0, "aarch64": 1}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return _SECCOMP.pack(code, jt, jf, k)


@functools.cache
def seccomp_filter(machine: str | None = None) -> bytes:
    """The classic-BPF seccomp program the effect runs under (bwrap `--seccomp`).

    Denied: new processes (fork, vfork, clone without CLONE_THREAD; clone3 says ENOSYS so that
    threads fall back to clone), sockets other than Unix ones, namespaces and mounts, ptrace and
    reading other processes' memory, bpf, perf, keyrings, io_uring, kernel modules. A call of
    another architecture's ABI kills the process.
    """
    machine = machine or platform.machine()
    if machine not in _ARCH:
        raise PermanentError(
            f"Python effects need a seccomp filter, which artdag has for x86_64 and aarch64, not {machine}"
        )
    index = _ARCH_INDEX[machine]
    calls = {name: number for name, numbers in _SYSCALLS.items() if (number := numbers[index]) is not None}
    program = [_op(_LD_ABS, 4), _op(_JEQ, _ARCH[machine], 1, 0), _op(_RET, _KILL), _op(_LD_ABS, 0)]
    if machine == "x86_64":  # the x32 ABI's numbers
        program += [_op(_JSET, 0x40000000, 0, 1), _op(_RET, _KILL)]
    for name, number in calls.items():
        if name not in ("clone", "clone3", "socket"):
            program += [_op(_JEQ, number, 0, 1), _op(_RET, _ERRNO | _EPERM)]
    program += [_op(_JEQ, calls["clone3"], 0, 1), _op(_RET, _ERRNO | _ENOSYS)]
    # socket(family, …): Unix sockets only (a network namespace has nothing else to reach anyway).
    program += [_op(_JEQ, calls["socket"], 0, 4), _op(_LD_ABS, 16), _op(_JEQ, _AF_UNIX, 0, 1)]
    program += [_op(_RET, _ALLOW), _op(_RET, _ERRNO | _EACCES)]
    # clone(flags, …): threads only.
    program += [_op(_JEQ, calls["clone"], 0, 4), _op(_LD_ABS, 16), _op(_JSET, _CLONE_THREAD, 0, 1)]
    program += [_op(_RET, _ALLOW), _op(_RET, _ERRNO | _EPERM)]
    program.append(_op(_RET, _ALLOW))
    return b"".join(program)


def _bind(source: str | Path, target: str | Path) -> list[str]:
    return ["--ro-bind", str(source), str(target)]


@functools.cache
def _system_args() -> tuple[str, ...]:
    """/usr and the top-level links into it, the interpreter's prefix (its site-packages hidden)."""
    args = _bind("/usr", "/usr")
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), top]
        elif path.is_dir():
            args += _bind(top, top)
    prefix = Path(os.path.realpath(sys.base_prefix))
    interpreter = Path(os.path.realpath(sys.executable))
    if not prefix.is_relative_to("/usr"):
        if len(prefix.parts) < 3:  # "/" or "/opt" would show far more than an interpreter
            raise PermanentError(f"Python effects cannot run: the interpreter's prefix {prefix} is too broad to bind")
        args += _bind(prefix, prefix)
    if not (interpreter.is_relative_to(prefix) or interpreter.is_relative_to("/usr")):
        args += _bind(interpreter, interpreter)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for hidden in (prefix / "lib" / version / "site-packages", Path("/usr/lib/python3/dist-packages")):
        if hidden.is_dir():
            args += ["--tmpfs", str(hidden)]
    return tuple(args)


@functools.cache
def _package_args(approved: frozenset[str]) -> tuple[str, ...]:
    """Each installed approved package's top-level files, read-only under `runner.SITE`."""
    args: list[str] = []
    seen: set[str] = set()
    for name in sorted(approved):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        site = Path(str(dist.locate_file(""))).resolve()
        for top in sorted({f.parts[0] for f in dist.files or () if f.parts}):
            path = Path(str(dist.locate_file(top)))
            # Only names directly in the package's site dir: never `..`, an absolute path or a link out.
            if top in seen or top.startswith((".", "/")) or top == "__pycache__" or not path.exists():
                continue
            if path.resolve().parent != site:
                continue
            seen.add(top)
            args += _bind(path, f"{runner.SITE}/{top}")
    return tuple(args)


def bwrap_path() -> str | None:
    """The bubblewrap binary, if installed."""
    return shutil.which("bwrap") or ("/usr/bin/bwrap" if Path("/usr/bin/bwrap").exists() else None)


def sandbox_command(policy: PythonEffectPolicy, seccomp_fd: int) -> list[str]:
    """The `bwrap` command line that runs `sandbox_runner` for one effect (no secrets in it)."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise PermanentError(
            "Python effects need bubblewrap (`apt-get install bubblewrap`), and bwrap is not installed"
        )
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/scratch",
        "TMPDIR": "/scratch",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"]
    args += ["--cap-drop", "ALL", "--die-with-parent", "--new-session", "--hostname", "artdag-effect", "--clearenv"]
    for key, value in environment.items():
        args += ["--setenv", key, value]
    args += [*_system_args(), *_package_args(policy.approved | ALWAYS_APPROVED)]
    args += _bind(runner.__file__, "/artdag/runner.py")
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(SCRATCH_BYTES), "--perms", "0700", "--tmpfs", "/scratch", "--chdir", "/scratch"]
    args += ["--remount-ro", "/", "--seccomp", str(seccomp_fd)]
    args += [os.path.realpath(sys.executable), "-I", "-S", "-B", "/artdag/runner.py"]
    return args


class _ChannelError(Exception):
    """The sandboxed process timed out, ended, or said something malformed (the reason)."""


_PIPE_BYTES = 1 << 20  # the pipes' capacity asked for: fewer wake-ups a frame (the default is 64 KiB)


class _Channel:
    """The pipes to one sandboxed process, each exchange within a deadline (stderr kept, its tail only)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self.to_child = process.stdin.fileno()
        self.from_child = process.stdout.fileno()
        self.errors: int | None = process.stderr.fileno()
        self.stderr = b""
        os.set_blocking(self.to_child, False)
        for fd in (self.to_child, self.from_child):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)

    def _wait(self, fd: int, events: int, deadline: float) -> bool:
        """Until `fd` is ready (True) or the deadline passes (False), reading stderr meanwhile."""
        poller = select.poll()
        poller.register(fd, events)
        if self.errors is not None:
            poller.register(self.errors, select.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(max(1, math.ceil(left * 1000))))
            if self.errors is not None and self.errors in ready:
                chunk = os.read(self.errors, 65536)
                self.stderr = (self.stderr + chunk)[-4096:]
                if not chunk:
                    poller.unregister(self.errors)
                    self.errors = None
            if fd in ready:
                return True
        return False

    def send(self, data: bytes | memoryview, deadline: float) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            if not self._wait(self.to_child, select.POLLOUT, deadline):
                raise _ChannelError("timeout")
            try:
                written = os.write(self.to_child, view)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise _ChannelError("ended") from None
            view = view[written:]

    def receive(self, size: int, deadline: float) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            if not self._wait(self.from_child, select.POLLIN, deadline):
                raise _ChannelError("timeout")
            n = os.readv(self.from_child, [view[got:]])
            if n == 0:
                raise _ChannelError("ended")
            got += n
        return buffer


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    with contextlib.suppress(OSError, ValueError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End the sandbox, then close the pipes.

    The sandbox's init (bwrap's child, PID 1 of its namespace) is killed first: the kernel then
    kills everything in the namespace, and bwrap reaps it and exits, leaving no orphan behind.
    If bwrap does not exit, its whole process group is killed.
    """
    if process.returncode is None:
        children = _children(process.pid)
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2 if children else 0)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


_scopes = threading.local()


def _current_scope() -> list[list[SandboxedEffect]]:
    stack: list[list[SandboxedEffect]] | None = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack


@contextlib.contextmanager
def sandbox_scope() -> Iterator[None]:
    """Close every sandboxed effect started within (in this thread) when the block ends, however it ends."""
    started: list[SandboxedEffect] = []
    stack = _current_scope()
    stack.append(started)
    try:
        yield
    finally:
        stack.remove(started)
        for effect in started:
            effect.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class SandboxedEffect:
    """One run of a Python effect: its own sandboxed process, fed one frame at a time.

    Starts the process and sends the setup at once (so a missing bwrap or an effect that fails to
    load is an error before the first frame). Any failure closes the process; calls after it
    raise the same error. `close` ends the process (idempotent; `sandbox_scope` calls it).
    """

    def __init__(self, effect: PythonEffect, cid: str, policy: PythonEffectPolicy, setup: EffectSetup) -> None:
        self.label = f"Python effect {effect.name!r} ({cid})"
        self.policy = policy
        self.shape = (setup.height, setup.width, 3)
        self._failure: PermanentError | None = None
        read_fd, write_fd = os.pipe()
        try:
            with os.fdopen(write_fd, "wb") as program:  # a few hundred bytes: the pipe holds them
                program.write(seccomp_filter())
            command = sandbox_command(policy, read_fd)
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(read_fd,),
                start_new_session=True,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},  # not this process's (its secrets)
            )
        except OSError as exc:
            raise PermanentError(f"{self.label}: the sandbox did not start: {exc}") from None
        finally:
            os.close(read_fd)
        self.pid = self.process.pid
        self._finalizer = weakref.finalize(self, _kill, self.process)
        scope = _current_scope()
        if scope:
            scope[-1].append(self)
        self._channel = _Channel(self.process)
        setup_message = {
            "source": effect.source,
            "width": setup.width,
            "height": setup.height,
            "fps": setup.fps,
            "seed": setup.seed,
            "cpu_s": policy.cpu_s,
            "memory_mib": policy.memory_mib,
        }
        self._exchange(_message(setup_message), b"", "while starting", runner.READY, 0)

    def __call__(self, frame: Frame, ctx: FrameContext) -> Frame:
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise PermanentError(f"{self.label}: given a {frame.shape} {frame.dtype} frame, not {self.shape} uint8")
        params = ctx.params.model_dump(mode="json")
        message = _message({"index": ctx.index, "time_s": ctx.time_s, "params": params})
        pixels = np.ascontiguousarray(frame).data.cast("B")
        size = self.shape[0] * self.shape[1] * 3
        data = self._exchange(message, pixels, f"at frame {ctx.index}", runner.FRAME, size)
        return np.frombuffer(data, dtype=np.uint8).reshape(self.shape)

    def _exchange(self, message: bytes, pixels: memoryview | bytes, where: str, kind: bytes, size: int) -> bytearray:
        if self._failure is not None:
            raise self._failure
        deadline = time.monotonic() + self.policy.wall_s
        try:
            self._channel.send(message, deadline)
            if len(pixels):
                self._channel.send(pixels, deadline)
            head = self._channel.receive(runner.REPLY.size, deadline)
            got, length = runner.REPLY.unpack(head)
            if got == runner.ERROR and 0 < length <= runner.MAX_ERROR:
                text = self._channel.receive(length, deadline).decode("utf-8", "replace")
                raise self._fail(f"{where}: {_printable(text)}")
            if got != kind or length != size:
                raise self._fail(
                    f"{where}: it sent a malformed reply ({got!r} with {length} bytes where "
                    f"{kind!r} with {size} were due): its process was stopped"
                )
            return self._channel.receive(size, deadline) if size else bytearray()
        except _ChannelError as exc:
            raise self._fail(f"{where}: {self._why(str(exc))}") from None

    def _why(self, what: str) -> str:
        if what == "timeout":
            return (
                f"took longer than {self.policy.wall_s:g} s (ARTDAG_PYTHON_EFFECT_WALL_S), so its process was stopped"
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)  # its output ended: it is ending, and its status says why
        _kill(self.process)
        status = self.process.returncode
        detail = _printable(self._channel.stderr.decode("utf-8", "replace").strip())[-400:]
        if status is not None and status > 128:
            name = _signal_name(status - 128)
            if status - 128 in (signal.SIGXCPU, signal.SIGKILL):
                return (
                    f"its process was killed ({name}): it used up its {self.policy.cpu_s} s of CPU time "
                    "(ARTDAG_PYTHON_EFFECT_CPU_S) or its memory"
                )
            return f"its process crashed ({name})"
        if detail.startswith("bwrap:"):
            return f"the sandbox did not start: {detail}"
        return f"its process ended unexpectedly (exit status {status})" + (f": {detail}" if detail else "")

    def _fail(self, message: str) -> PermanentError:
        self.close()
        self._failure = PermanentError(f"{self.label} {message}")
        return self._failure

    def close(self) -> None:
        """End the sandboxed process (and everything in its PID namespace)."""
        self._finalizer()


def _message(value: dict[str, Any]) -> bytes:
    body = json.dumps(value, allow_nan=False).encode()
    return runner.MESSAGE.pack(len(body)) + body


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch == " " else "?" for ch in text.replace("\n", " ")).strip()
