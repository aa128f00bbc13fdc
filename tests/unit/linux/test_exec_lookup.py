"""argv[0] resolution and exec error mapping (runtime/init.py), Docker/runc semantics."""

from __future__ import annotations

import errno
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import init


def _file(path, mode: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return str(path)


def test_name_with_slash_is_used_as_is():
    assert init.lookup_executable("./x", "/nowhere") == "./x"
    assert init.lookup_executable("/bin/sh", "") == "/bin/sh"


def test_first_executable_regular_file_in_path_wins(tmp_path):
    _file(tmp_path / "a" / "tool", 0o644)  # not executable: skipped, like Go's LookPath
    (tmp_path / "b" / "tool").mkdir(parents=True)  # a directory: skipped
    want = _file(tmp_path / "c" / "tool", 0o755)
    _file(tmp_path / "d" / "tool", 0o755)
    path = ":".join(str(tmp_path / d) for d in "abcd")
    assert init.lookup_executable("tool", path) == want


def test_not_found(tmp_path):
    _file(tmp_path / "a" / "tool", 0o644)
    with pytest.raises(init.ExecFailed) as ei:
        init.lookup_executable("tool", str(tmp_path / "a"))
    assert ei.value.kind == init.NOT_FOUND
    assert str(ei.value) == 'exec: "tool": executable file not found in $PATH'


def test_empty_path_entry_means_cwd(tmp_path, monkeypatch):
    _file(tmp_path / "tool", 0o755)
    monkeypatch.chdir(tmp_path)
    assert init.lookup_executable("tool", "/nowhere:") == "./tool"


def test_default_path_when_unset(monkeypatch):
    seen = []

    def missing(path):
        seen.append(path)
        raise FileNotFoundError(path)

    monkeypatch.setattr(os, "stat", missing)
    with pytest.raises(init.ExecFailed):
        init.lookup_executable("x", None)
    assert seen[0] == "/usr/local/sbin/x" and seen[-1] == "/bin/x"


def test_env_helpers():
    env = ["PATH=/a", "X=1=2", "PATH=/b", "EMPTY=", "NOEQUALS"]
    assert init.env_lookup(env, "PATH") == "/b"
    assert init.env_lookup(env, "P") is None
    assert init.env_dict(env) == {"PATH": "/b", "X": "1=2", "EMPTY": "", "NOEQUALS": ""}


def test_exec_error_mapping(tmp_path):
    missing = str(tmp_path / "missing")
    e = init.exec_error("/x", missing, OSError(errno.ENOENT, "x"))
    assert (e.kind, str(e)) == (init.NOT_FOUND, f'exec: "/x": stat {missing}: no such file or directory')
    present = _file(tmp_path / "script", 0o755)  # exists, but e.g. its interpreter does not
    assert init.exec_error("script", present, OSError(errno.ENOENT, "x")).kind == init.NOT_FOUND
    e = init.exec_error("/etc/passwd", "/etc/passwd", OSError(errno.EACCES, "x"))
    assert (e.kind, str(e)) == (init.NOT_EXECUTABLE, 'exec: "/etc/passwd": permission denied')
    e = init.exec_error("bin", "/bin", OSError(errno.ENOEXEC, "x"))
    assert (e.kind, str(e)) == (init.NOT_EXECUTABLE, "exec /bin: exec format error")
