"""Python effects: the header read without running it, and the real bubblewrap sandbox they run in.

The sandbox tests run `bwrap` for real (`make bubblewrap` installs it): a plain effect gives the
right pixels, and hostile effects (reading or writing outside their scratch dir, opening sockets,
looping forever, eating memory, forking, crashing, answering with the wrong bytes) end in a clear
error naming the effect and the frame, with their processes gone. Without a working bwrap they
skip locally and fail in CI (tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from artdag_common.cid import cid_of_bytes, cid_of_file
from artdag_common.errors import InvalidInputError, PermanentError
from artdag_common.settings import CommonSettings, environment_variables
from artdag_effects.sandbox import (
    PYTHON_EFFECT_VERSION,
    PythonEffect,
    PythonEffectPolicy,
    SandboxedEffect,
    bwrap_path,
    check_python_effect,
    parse_python_effect,
    sandbox_scope,
    seccomp_filter,
)
from artdag_effects.spec import EffectParams, EffectSetup, Frame, FrameContext

REPO = Path(__file__).resolve().parents[2]
W, H = 32, 24
FRAME: Frame = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
POLICY = PythonEffectPolicy(approved=frozenset({"numpy", "scipy"}), cpu_s=20, memory_mib=512, wall_s=10.0)

INVERT = """\
# artdag: python-effect
# /// script
# requires-python = ">=3.11"
# dependencies = ["numpy"]
# ///
\"\"\"Invert the picture, as far as `intensity` says.\"\"\"
import numpy as np

META = {
    "name": "invert",
    "description": "towards the negative",
    "params": {
        "intensity": {"type": "float", "default": 1.0, "range": [0, 1], "description": "0: unchanged"},
    },
}


def process_frame(frame, params, state):
    i = params["intensity"]
    return frame * (1 - i) + (255.0 - frame) * i, state
"""


def effect(body: str, *, meta: str = '{"name": "probe"}', header: str = "") -> str:
    """A Python effect's source: the mark, an optional header, META and the given body."""
    return f"# artdag: python-effect\n{header}import os\nimport numpy as np\nMETA = {meta}\n" + textwrap.dedent(body)


def _bwrap_problem() -> str | None:
    path = bwrap_path()
    if path is None:
        return "bwrap is not installed (`make bubblewrap` installs Debian's bubblewrap)"
    probe = [path, "--unshare-all", "--unshare-user", "--disable-userns", "--ro-bind", "/", "/", "true"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        return f"bwrap cannot make a sandbox here: {result.stderr.strip()[:200]}"
    return None


BWRAP_PROBLEM = _bwrap_problem()
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=str(BWRAP_PROBLEM))


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> set[int]:
    """`root` and every process below it."""
    parents = {int(p.name): _parent_of(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += [child for child, parent in parents.items() if parent == pid and child not in found]
    return found


def sandboxes() -> set[int]:
    """The bwrap processes below this one."""
    found = set()
    for pid in descendants(os.getpid()) - {os.getpid()}:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "bwrap":
                found.add(pid)
        except OSError:
            pass
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie counts as gone: it runs nothing)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.add(pid)
    return running


def gone_soon(pids: set[int], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pids)


@pytest.fixture(autouse=True)
def scope() -> Iterator[None]:
    """Every test's sandboxes are closed when it ends, and none is left running after."""
    with sandbox_scope():
        yield
    assert gone_soon(sandboxes()), "a sandbox outlived its test"


def start(source: str, policy: PythonEffectPolicy = POLICY, *, seed: int = 7) -> SandboxedEffect:
    parsed = parse_python_effect(source)
    spec = parsed.spec("QmProbe", policy)
    run = spec.factory(spec.params_model(), EffectSetup(W, H, 25.0, seed))
    assert isinstance(run, SandboxedEffect)
    return run


def run_frame(run: SandboxedEffect, index: int = 0, params: BaseModel | None = None) -> Frame:
    return run(FRAME, FrameContext(index, index / 25.0, params if params is not None else EffectParams()))


def invert_params(intensity: float) -> BaseModel:
    return parse_python_effect(INVERT).params_model()(intensity=intensity)


def failure(source: str, policy: PythonEffectPolicy = POLICY) -> str:
    """The error a sandboxed effect ends in, at start or at its first frame."""
    with pytest.raises(PermanentError) as caught:
        run = start(source, policy)
        run_frame(run)
    message = caught.value.message
    assert message.startswith("Python effect 'probe' (QmProbe)"), message
    return message


# -- the header, read without running anything ---------------------------------------------------


def test_the_header_is_read_without_running_the_file() -> None:
    parsed = parse_python_effect(INVERT)
    assert (parsed.name, parsed.description, parsed.dependencies) == ("invert", "towards the negative", ("numpy",))
    spec = parsed.spec("QmInvert", POLICY)
    assert spec.name == "QmInvert" and spec.version == PYTHON_EFFECT_VERSION
    assert spec.temporal, "its state goes from frame to frame: never split into chunks"
    assert spec.numeric_params() == {"intensity"}
    assert spec.params_model().model_dump() == {"intensity": 1.0}
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        spec.params_model(intensity=2)
    with pytest.raises(ValidationError, match="Extra inputs"):
        spec.params_model(size=3)
    rich = parse_python_effect(
        effect(
            "def process_frame(frame, params, state):\n    return frame, state\n",
            meta="""{"name": "rich", "params": {
                "n": {"default": 3, "range": [1, 9]},
                "mode": {"type": "choice", "choices": ["soft", "hard"], "default": "hard"},
                "tint": {"type": "color", "default": [255, 0, 0]},
                "on": {"default": True}}}""",
        )
    )
    assert [(p.name, p.kind, p.default) for p in rich.params] == [
        ("n", "int", 3),
        ("mode", "choice", "hard"),
        ("tint", "color", (255, 0, 0)),
        ("on", "bool", True),
    ]
    model = rich.params_model()
    assert model().model_dump() == {"n": 3, "mode": "hard", "tint": (255, 0, 0), "on": True}
    with pytest.raises(ValidationError):
        model(mode="medium")
    # Nothing ran: a file whose top level would fail (or do harm) still parses.
    harmful = effect("open('/tmp/artdag-should-not-exist', 'w')\ndef process_frame(f, p, s):\n    return f, s\n")
    assert parse_python_effect(harmful).name == "probe"
    assert not Path("/tmp/artdag-should-not-exist").exists()


HOSTILE_HEADERS = [
    ("def process_frame(f, p, s)\n    return f\n", "line 5, column 27: Python syntax: expected ':'"),
    ("x = (" * 300 + "\n", "line 5"),
    ("[" * 100_000, "Python"),
    ("\0", "Python"),
    ("", "defines process_frame"),
    ("async def process_frame(f, p, s):\n    return f, s\n", "line 5, column 1: process_frame is a plain function"),
    (
        "def process_frame(frame):\n    return frame\n",
        r"line 5, column 1: process_frame takes \(frame, params, state\)",
    ),
]


@pytest.mark.parametrize(("body", "expected"), HOSTILE_HEADERS)
def test_a_malformed_module_is_a_clear_error(body: str, expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected) as caught:
        parse_python_effect(effect(body))
    assert caught.value.field == "source"


PROCESS = "def process_frame(f, p, s):\n    return f, s\n"

HOSTILE_META = [
    ("dict(name='x')", "line 4, column 8: META is a literal dict"),
    ("{'name': __import__('os').system('id')}", "META is a literal dict"),
    ("['name']", "META is a dict"),
    ("{'name': 'Bad Name'}", "META needs a name"),
    ("{'name': 'x', 'exec': 'rm -rf /'}", "unknown key 'exec'"),
    ("{'name': 'x', 'params': {'a': {'default': 1e999}}}", "finite number"),
    ("{'name': 'x', 'params': {'a': {'default': float('nan')}}}", "META is a literal dict"),
    (
        "{'name': 'x', 'params': {'a': {'default': 5, 'range': [0, 1]}}}",
        "line 4, column 50: parameter 'a': the default 5 is outside its range",
    ),
    ("{'name': 'x', 'params': {'a': {'default': 1, 'range': [2, 1]}}}", "its range \\[2, 1\\] is empty"),
    ("{'name': 'x', 'params': {'a': {'type': 'bytes', 'default': 1}}}", "type is float, int, bool, color or choice"),
    ("{'name': 'x', 'params': {'a': {'type': 'choice', 'choices': ['p'], 'default': 'q'}}}", "not one of its choices"),
    ("{'name': 'x', 'params': {'a': {'type': 'color', 'default': [300, 0, 0]}}}", "each 0..255"),
    ("{'name': 'x', 'params': {'_index': {'default': 1}}}", "parameter '_index': a name is lower-case"),
    ("{'name': 'x', 'params': {'a': 1}}", "parameter 'a' is a dict"),
    ("{'name': 'x', 'params': {'a': {}}}", "needs a default"),
    ("{'name': 'x', 'params': {" + ", ".join(f"'p{i}': {{'default': 1}}" for i in range(40)) + "}}", "at most 32"),
    ("{'name': 'x', 'params': " + "[" * 5000 + "]" * 5000 + "}", "Python|META"),
]


@pytest.mark.parametrize(("meta", "expected"), HOSTILE_META)
def test_a_malformed_meta_is_a_clear_error_at_its_line(meta: str, expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected) as caught:
        parse_python_effect(effect(PROCESS, meta=meta))
    assert caught.value.field == "source"


def test_dependencies_come_only_from_the_approved_list() -> None:
    def with_deps(deps: str) -> str:
        return effect(PROCESS, header=f"# /// script\n# dependencies = {deps}\n# ///\n")

    assert check_python_effect(with_deps('["numpy>=1.20", "SciPy"]'), POLICY).dependencies == ("numpy", "scipy")
    with pytest.raises(InvalidInputError, match=r"line 2, column 1: dependency 'requests' is not on this server's"):
        check_python_effect(with_deps('["numpy", "requests"]'), POLICY)
    with pytest.raises(InvalidInputError, match="dependency 'scipy' is not on"):
        check_python_effect(with_deps('["scipy"]'), PythonEffectPolicy())  # numpy only, the default
    ghost = PythonEffectPolicy(approved=frozenset({"numpy", "artdag-no-such-package"}))
    with pytest.raises(InvalidInputError, match="'artdag-no-such-package' is approved but not installed"):
        check_python_effect(with_deps('["artdag_no_such_package"]'), ghost)
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        check_python_effect(with_deps('["numpy"'), POLICY)
    with pytest.raises(InvalidInputError, match="not a package requirement"):
        check_python_effect(with_deps('["../../etc/passwd"]'), POLICY)
    twice = "# /// script\n# dependencies = []\n# ///\nx = 1\n# /// script\n# dependencies = []\n# ///\n"
    with pytest.raises(InvalidInputError, match="line 6, column 1: a second"):
        check_python_effect(effect(PROCESS, header=twice), POLICY)


def test_python_effects_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from artdag_effects.loading import load_user_effects
    from artdag_effects.user import check_source, register_user_effect

    for name in environment_variables(CommonSettings):
        if "PYTHON_EFFECT" in name:
            monkeypatch.delenv(name, raising=False)
    assert PythonEffectPolicy.of(CommonSettings()) is None
    source = INVERT.encode()
    cid = cid_of_bytes(source)
    with pytest.raises(InvalidInputError, match="Python effects are off on this server") as caught:
        register_user_effect(cid, source)
    assert caught.value.field == "effect" and caught.value.message.startswith(f"effect {cid}: ")

    async def read(wanted: str, limit: int) -> bytes:
        return source

    # What the planner does with a recipe's effects at submission: refused there, a 422.
    with pytest.raises(InvalidInputError, match="ARTDAG_PYTHON_EFFECTS=1") as caught:
        import asyncio

        asyncio.run(load_user_effects([cid], read))
    assert caught.value.field == "effect"
    with pytest.raises(InvalidInputError, match="Python effects are off") as caught:
        check_source(INVERT)
    assert caught.value.field == "source"
    assert check_source("(define-effect negative (- 255 frame))").name == "negative", "the language is unaffected"


def test_an_admin_turns_them_on_with_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from artdag_effects.user import check_source, register_user_effect, user_effect

    monkeypatch.setenv("ARTDAG_PYTHON_EFFECTS", "1")
    monkeypatch.setenv("ARTDAG_PYTHON_EFFECT_DEPS", "SciPy, numpy")
    monkeypatch.setenv("ARTDAG_PYTHON_EFFECT_CPU_S", "60")
    monkeypatch.setenv("ARTDAG_PYTHON_EFFECT_MEMORY_MIB", "768")
    monkeypatch.setenv("ARTDAG_PYTHON_EFFECT_WALL_S", "5")
    policy = PythonEffectPolicy.of(CommonSettings())
    assert policy == PythonEffectPolicy(frozenset({"numpy", "scipy"}), cpu_s=60, memory_mib=768, wall_s=5.0)
    assert {"ARTDAG_PYTHON_EFFECTS", "ARTDAG_PYTHON_EFFECT_DEPS"} <= environment_variables(CommonSettings)
    monkeypatch.setenv("ARTDAG_PYTHON_EFFECT_DEPS", "numpy; rm -rf /")
    with pytest.raises(ValidationError, match="not a package name"):
        CommonSettings()
    assert isinstance(check_source(INVERT, python=policy), PythonEffect)
    source = INVERT.encode()
    cid = cid_of_bytes(source)
    spec = register_user_effect(cid, source, python=policy)
    assert user_effect(cid) is spec and spec.name == cid
    assert register_user_effect(cid, source, python=policy) is spec, "registered once per process"
    with pytest.raises(InvalidInputError, match="off on this server"):
        register_user_effect(cid, source)  # a caller without the policy is still refused


def test_the_seccomp_filter_is_a_program_for_this_machine() -> None:
    program = seccomp_filter()
    assert len(program) % 8 == 0 and len(program) // 8 < 256
    assert seccomp_filter("aarch64") != program or os.uname().machine == "aarch64"
    with pytest.raises(PermanentError, match="not sparc64"):
        seccomp_filter("sparc64")


# -- in the sandbox ------------------------------------------------------------------------------


@needs_bwrap
def test_an_effect_gives_the_right_pixels_and_keeps_its_state() -> None:
    run = start(INVERT)
    assert np.array_equal(run_frame(run, 0, invert_params(1.0)), 255 - FRAME)
    half = run_frame(run, 1, invert_params(0.5))
    assert np.array_equal(half, np.clip(np.rint(FRAME * 0.5 + (255.0 - FRAME) * 0.5), 0, 255).astype(np.uint8))
    counter = start(
        effect("""
        def process_frame(frame, params, state):
            count = (state or 0) + 1
            out = np.zeros_like(frame)
            out[..., 0], out[..., 1], out[..., 2] = count, params["_index"] % 256, params["_seed"] % 256
            return out, count
        """),
        seed=300,
    )
    for index in (5, 6, 7):
        out = run_frame(counter, index)
        assert tuple(out[0, 0]) == (index - 4, index, 300 % 256), "state, the frame index and the step's seed"
        assert out.flags.writeable, "the caller may keep (and change) what it gets"


@needs_bwrap
def test_it_cannot_read_outside_its_scratch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret")
    store = tmp_path / "home" / "cache"
    store.mkdir(parents=True)
    (store / "QmStoredContent").write_bytes(b"someone's upload")
    monkeypatch.setenv("ARTDAG_CLUSTER_KEY", "cluster-key-secret")
    paths = [
        str(secret),
        str(store / "QmStoredContent"),
        str(REPO / "pyproject.toml"),
        str(REPO / "libs/artdag_common/settings.py"),
        "/root/.bashrc",
        "/etc/passwd",
        "/etc/shadow",
        f"/proc/{os.getpid()}/environ",
    ]
    dirs = [
        str(tmp_path),
        str(store),
        str(REPO),
        str(Path.home() / ".artdag"),
        "/root",
        "/home",
        "/tmp",
        "/etc",
        "/var",
    ]
    message = failure(
        effect(f"""
        PATHS, DIRS = {paths!r}, {dirs!r}

        def process_frame(frame, params, state):
            read = []
            for path in PATHS:
                try:
                    with open(path, "rb") as handle:
                        handle.read(1)
                    read.append(path)
                except OSError:
                    pass
            listed = [d for d in DIRS if os.path.isdir(d) and os.listdir(d) not in ([], [".pyenv"])]
            environment = " ".join(os.environ.values()) + open("/proc/self/environ").read()
            with open("/scratch/note", "w") as handle:
                handle.write("mine")
            raise RuntimeError(
                f"read={{read}} listed={{listed}} secret_env={{'cluster-key-secret' in environment}} "
                f"scratch={{open('/scratch/note').read()}}"
            )
        """)
    )
    assert "at frame 0: RuntimeError: read=[] listed=[] secret_env=False scratch=mine (effect.py line" in message


@needs_bwrap
def test_it_cannot_write_outside_its_scratch_dir(tmp_path: Path) -> None:
    targets = ["/x", "/usr/x", "/tmp/x", "/artdag/x", "/artdag/site/numpy/x", str(tmp_path / "x"), "/proc/x"]
    message = failure(
        effect(f"""
        def process_frame(frame, params, state):
            written = []
            for path in {targets!r}:
                try:
                    with open(path, "w") as handle:
                        handle.write("escaped")
                    written.append(path)
                except OSError:
                    pass
            with open("/scratch/ok", "w") as handle:
                handle.write("fine")
            raise RuntimeError(f"written={{written}}")
        """)
    )
    assert "RuntimeError: written=[]" in message
    assert not (tmp_path / "x").exists()


@needs_bwrap
def test_it_cannot_open_a_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        message = failure(
            effect(f"""
            import socket

            def process_frame(frame, params, state):
                tried = []
                for family, kind, address in [
                    (socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", {port})),
                    (socket.AF_INET6, socket.SOCK_STREAM, ("::1", {port})),
                    (socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", {port})),
                ]:
                    try:
                        with socket.socket(family, kind) as s:
                            s.settimeout(1)
                            s.connect(address)
                            s.sendall(b"hello")
                        tried.append("connected")
                    except OSError as exc:
                        tried.append(type(exc).__name__)
                raise RuntimeError(f"sockets={{tried}}")
            """)
        )
        assert "sockets=['PermissionError', 'PermissionError', 'PermissionError']" in message
        readable, _, _ = select.select([listener], [], [], 0.3)
        assert readable == [], "the listener never got a connection"


@needs_bwrap
def test_an_endless_loop_is_stopped_at_its_time_limit() -> None:
    policy = PythonEffectPolicy(cpu_s=30, memory_mib=512, wall_s=1.0)
    run = start(effect("def process_frame(frame, params, state):\n    while True:\n        pass\n"), policy)
    pids = descendants(run.pid)
    assert len(alive(pids)) == 3, "bwrap, the sandbox's init and the effect's Python"
    began = time.monotonic()
    with pytest.raises(PermanentError, match=r"'probe' \(QmProbe\) at frame 0: took longer than 1 s") as caught:
        run_frame(run)
    assert 0.9 <= time.monotonic() - began < 4
    assert "ARTDAG_PYTHON_EFFECT_WALL_S" in caught.value.message
    assert gone_soon(pids), f"still running: {alive(pids)}"
    with pytest.raises(PermanentError, match="took longer than"):
        run_frame(run, 1)  # a stopped effect stays stopped


@needs_bwrap
def test_it_is_killed_when_its_cpu_time_runs_out() -> None:
    policy = PythonEffectPolicy(cpu_s=1, memory_mib=512, wall_s=20.0)
    message = failure(effect("def process_frame(frame, params, state):\n    while True:\n        pass\n"), policy)
    assert "at frame 0: its process was killed (SIGXCPU): it used up its 1 s of CPU time" in message


@needs_bwrap
@pytest.mark.parametrize(
    "bomb",
    [
        "blocks = []\n    while True:\n        blocks.append(bytearray(64 * 2**20))",
        "return np.ones((200_000, 200_000)), state",
    ],
)
def test_a_memory_bomb_is_stopped(bomb: str) -> None:
    policy = PythonEffectPolicy(cpu_s=20, memory_mib=256, wall_s=10.0)
    message = failure(effect(f"def process_frame(frame, params, state):\n    {bomb}\n"), policy)
    assert "at frame 0: MemoryError: out of memory (the limit is 256 MiB) (effect.py line" in message


@needs_bwrap
def test_a_fork_bomb_is_contained() -> None:
    run = start(
        effect("""
        import subprocess
        import threading

        def process_frame(frame, params, state):
            results = []
            try:
                subprocess.run(["/usr/bin/true"], check=True)
                results.append("spawned")
            except OSError as exc:
                results.append(type(exc).__name__)
            done = []
            worker = threading.Thread(target=lambda: done.append(1))
            worker.start()
            worker.join()
            results.append(f"threads={len(done)}")
            if state is None:
                return frame, results
            if state != ["PermissionError", "threads=1"]:
                raise RuntimeError(f"unexpected: {state}")
            while True:
                os.fork()
        """)
    )
    pids = descendants(run.pid)
    run_frame(run)
    assert descendants(run.pid) == pids, "nothing new was started"
    with pytest.raises(PermanentError, match=r"at frame 1: PermissionError: \[Errno 1\] Operation not permitted"):
        run_frame(run, 1)
    assert gone_soon(pids)


@needs_bwrap
def test_escape_attempts_are_refused() -> None:
    message = failure(
        effect("""
        import ctypes

        def process_frame(frame, params, state):
            libc = ctypes.CDLL(None, use_errno=True)
            refused = [
                libc.unshare(0x10000000) == -1,  # a new user namespace
                libc.mount(b"none", b"/scratch", b"tmpfs", 0, None) == -1,
                libc.ptrace(16, 1, None, None) == -1,  # attach to the sandbox's init
                libc.chroot(b"/scratch") == -1,
            ]
            raise RuntimeError(f"refused={refused}")
        """)
    )
    assert "refused=[True, True, True, True]" in message


@needs_bwrap
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "return frame[:2, :2], state",
            r"at frame 0: process_frame returned an array of shape \(2, 2, 3\), not \(24, 32, 3\)",
        ),
        ("return frame.astype(np.int64), state", "returned int64 values: return uint8"),
        ("return frame / 0.0, state", "returned NaN or infinite values"),
        ("return np.full(frame.shape, np.inf), state", "returned NaN or infinite values"),
        ("return frame.tolist(), state", "returned a list frame, not a numpy array"),
        ("return None", "returned a NoneType frame"),
        ("return frame.astype(object), state", "returned object values"),
        ("raise ValueError('bad input')", "at frame 0: ValueError: bad input \\(effect.py line 6\\)"),
        (
            "def deeper(n):\n        return deeper(n + 1)\n    return deeper(0)",
            "RecursionError: maximum recursion depth",
        ),
        ("raise SystemExit(3)", "the effect called exit\\(3\\)"),
        ("os._exit(0)", "its process ended unexpectedly \\(exit status 0\\)"),
        ("os.kill(os.getpid(), 11)", "its process crashed \\(SIGSEGV\\)"),
        ("raise RuntimeError('x' * 1_000_000)", "RuntimeError: xxxx"),
    ],
)
def test_a_wrong_answer_is_a_clear_error(body: str, expected: str) -> None:
    message = failure(effect(f"def process_frame(frame, params, state):\n    {body}\n"))
    assert len(message) < 2500
    assert re.search(expected, message), message


@needs_bwrap
def test_bytes_that_break_the_protocol_stop_the_effect() -> None:
    message = failure(
        effect("""
        import time

        def process_frame(frame, params, state):
            for fd in range(3, 16):
                try:
                    os.write(fd, b"X" * 64)
                except OSError:
                    pass
            time.sleep(30)
        """)
    )
    assert "at frame 0: it sent a malformed reply" in message


@needs_bwrap
def test_a_module_that_fails_to_load_is_an_error_before_any_frame() -> None:
    message = failure(effect("import requests\n" + PROCESS))
    assert "while starting: ModuleNotFoundError: No module named 'requests' (effect.py line 5)" in message
    message = failure(effect("import scipy.ndimage\n" + PROCESS), PythonEffectPolicy())
    assert "No module named 'scipy'" in message, "only the approved packages are importable"
    assert start(effect("import scipy.ndimage\n" + PROCESS)) is not None


@needs_bwrap
def test_a_step_renders_through_the_sandbox_and_leaves_nothing_running(tmp_path: Path) -> None:
    from artdag_cli.demo_media import write_test_clip
    from services.executor.operations import run_operation

    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.6, with_audio=False)
    source = INVERT.encode()
    cid = cid_of_bytes(source)
    ours, builtin = tmp_path / "python.mp4", tmp_path / "builtin.mp4"
    run_operation(
        "EFFECT", {"effect": cid}, [str(clip)], str(ours), ["clip"], user_effects={cid: source}, python_effects=POLICY
    )
    run_operation("EFFECT", {"effect": "invert"}, [str(clip)], str(builtin), ["clip"])
    assert cid_of_file(ours) == cid_of_file(builtin), "the same pixels as the built-in invert, so the same bytes"
    assert sandboxes() == set(), "the step's sandbox ended with it"
    with pytest.raises(InvalidInputError, match="Python effects are off"):
        run_operation("EFFECT", {"effect": cid}, [str(clip)], str(ours), ["clip"], user_effects={cid: source})
