"""Which programs the audit hook can see: a Python interpreter that will load it.

Shared by the hook (for the programs a job's Python process starts) and the launcher (for the job's
own command), so both apply one rule. It lives beside ``sitecustomize`` because the hook can import
nothing from ``provenance``; its name is prefixed so that it cannot shadow a module of the job.

Stdlib only. Programs and arguments come from the job: they are only looked at (a script's first
line is read to find its interpreter), never run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?[dmut]*(-dbg)?$")
# options of the interpreter that take the next argument as their value
_WITH_VALUE = frozenset("WXQ")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, str):
        return value
    try:
        return os.fsdecode(os.fspath(value))  # type: ignore[call-overload]
    except TypeError:
        return str(value)


def _get(env: Mapping[object, object] | None, key: str) -> str | None:
    if env is None:
        return os.environ.get(key)
    value = env.get(key, env.get(key.encode()))
    return None if value is None else _text(value)


def _which(program: str, env: Mapping[object, object] | None) -> str | None:
    if "/" in program:
        return program if os.path.isfile(program) else None
    for directory in (_get(env, "PATH") or os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _shebang(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    return os.fsdecode(head[2:].split(b"\n", 1)[0]).split()


def _after_env(argv: Sequence[str]) -> tuple[list[str], bool]:
    """The command ``env [options] [NAME=VALUE]... COMMAND`` runs, and whether it clears the environment."""
    rest, cleared = list(argv[1:]), False
    while rest:
        arg = rest[0]
        if arg in ("-i", "--ignore-environment", "-"):
            cleared = True
        elif arg in ("-u", "--unset", "-C", "--chdir"):
            rest.pop(0)
        elif arg == "--":
            rest.pop(0)
            break
        elif not (arg.startswith("-") or "=" in arg):
            break
        rest.pop(0)
    return rest, cleared


def _hook_loads(argv: Sequence[str], env: Mapping[object, object] | None, hook_dir: str) -> bool:
    """Whether a Python started with ``argv`` and ``env`` imports the hook's sitecustomize."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or arg == "-" or not arg.startswith("-"):
            break  # the script (or stdin): the interpreter's own options end here
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        letters, ends = arg[1:], False
        for j, letter in enumerate(letters):
            if letter in "IES":  # isolated, environment ignored, no site: no sitecustomize from PYTHONPATH
                return False
            if letter in "cm":  # the rest is the command or the module
                ends = True
                break
            if letter in _WITH_VALUE:  # its value is the rest of this argument, or the next one
                i += j + 1 == len(letters)
                break
        if ends:
            break
        i += 1
    path = _get(env, "PYTHONPATH") or ""
    return bool(_get(env, "PROVENANCE_SPOOL")) and hook_dir in path.split(os.pathsep)


def unseen_program(executable: object, argv: Sequence[object] | None, env: Mapping[object, object] | None,
                   hook_dir: str, _depth: int = 0) -> str | None:
    """None when the program is a Python interpreter that will load the hook; else the program's name
    (what a capture gap lists). ``env`` None means the current environment."""
    args = [_text(a) for a in (argv or [])]
    program = _text(executable) if executable is not None else (args[0] if args else "")
    if not program:
        return None
    name = os.path.basename(program)
    if _depth > 3:
        return name
    if name == "env":
        rest, cleared = _after_env(args or [program])
        if not rest:
            return None  # prints the environment: no file I/O to see
        return unseen_program(rest[0], rest, {} if cleared else env, hook_dir, _depth + 1) or None
    if _PYTHON.match(name):
        return None if _hook_loads(args or [program], env, hook_dir) else name
    path = _which(program, env)
    interpreter = _shebang(path) if path is not None else []
    if interpreter:  # a script: the program that runs is its interpreter
        inner = unseen_program(interpreter[0], [*interpreter, path or program, *args[1:]], env, hook_dir, _depth + 1)
        return None if inner is None else name
    return name
