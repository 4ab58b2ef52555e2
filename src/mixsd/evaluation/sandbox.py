"""Run model-written code (HumanEval, MBPP tests) in a child process that cannot do much harm by accident.

Only with `mixsd eval --allow-code-execution` (SECURITY.md). Each program runs in a fresh `python -I` in its own
temporary directory, with no inherited environment (no tokens, no keys), in its own session so the whole
process group is killed at the wall-clock limit, and under rlimits on CPU time, address space, file size and
core dumps. Inside, an audit hook (PEP 578, which the program cannot remove) refuses processes, signals,
sockets, ctypes, and any write, delete or rename outside the temporary directory.

This guards against the mistakes a model makes (an endless loop, a huge list, `shutil.rmtree("/")`), not
against code written to escape: for untrusted models, run the evaluation in a container or VM.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile

CODE_ENV = "MIXSD_ALLOW_CODE_EXECUTION"  # set while `mixsd eval --allow-code-execution` scores code tasks
TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30
FILE_BYTES = 16 << 20

# Runs in the child before the program. The program passes when it returns and the child prints the nonce
# (read from stdin, so `os._exit(0)` halfway through is not a pass).
_CHILD = r"""
import os, sys
_root = os.path.realpath(os.getcwd()) + os.sep
_nonce = sys.stdin.readline().strip()
_program = sys.stdin.read()

def _inside(path):
    if isinstance(path, int):
        return True  # an already open descriptor: opening it was checked
    return os.path.realpath(os.fsdecode(path)).startswith(_root)

_DENIED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
           "os.killpg", "subprocess.Popen", "pty.spawn", "socket.", "ctypes.", "os.setuid", "os.chroot",
           "sys.remote_exec", "os.putenv", "os.unsetenv")
_WRITES = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.rename": 2, "os.replace": 2, "os.link": 2,
           "os.symlink": 2, "os.truncate": 1, "os.chmod": 1, "os.chown": 1, "os.utime": 1, "shutil.rmtree": 1,
           "shutil.move": 2, "shutil.copyfile": 2, "os.chdir": 1}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def _guard(event, args):
    if event.startswith(_DENIED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (flags or 0) & _WRITE_FLAGS or any(c in (mode or "") for c in "wax+")
        if writing and path is not None and not _inside(path):
            raise PermissionError(f"sandbox: no writing outside the sandbox ({path})")
    elif event in _WRITES:
        for path in args[: _WRITES[event]]:
            if path is not None and not _inside(path):
                raise PermissionError(f"sandbox: {event} outside the sandbox ({path})")

sys.addaudithook(_guard)
try:
    exec(compile(_program, "<model code>", "exec"), {"__name__": "__main__"})
except BaseException:
    raise SystemExit(1)
sys.stdout.flush()
sys.__stdout__.write("\n" + _nonce + "\n")
"""


def _limits(cpu_s: int, memory: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(program: str, *, timeout_s: float = TIMEOUT_S, memory: int = MEMORY_BYTES) -> tuple[bool, str]:
    """(passed, why): did `program` run to its end, within the limits, without raising?"""
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="mixsd-sandbox-") as tmp:
        child = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp, "TMPDIR": tmp},
            start_new_session=True,
            preexec_fn=lambda: _limits(int(timeout_s) + 1, memory),
        )
        try:
            out, _ = child.communicate(f"{nonce}\n{program}".encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            return False, "timeout"
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    if child.returncode != 0:
        return False, f"exit {child.returncode}"
    if not out.decode(errors="replace").rstrip().endswith(nonce):
        return False, "exited before its end"
    return True, "passed"


def passes(program: str) -> bool:
    return run(program)[0]
