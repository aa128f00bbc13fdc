"""The syscall layer: generated cffi module, wrappers and errno reporting (real kernel)."""

from __future__ import annotations

import errno
import importlib.util
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import _libc_ffi, libc

LINUX_DIR = os.path.dirname(libc.__file__)


REPO = os.path.dirname(os.path.dirname(os.path.dirname(LINUX_DIR)))
FFI_BUILD = os.path.join(REPO, "tools", "ffi_build.py")
FFI_TARGETS = ["linux/_libc_ffi", "linux/_seccomp_ffi", "network/_nft_ffi"]


@pytest.mark.parametrize("target", FFI_TARGETS)
def test_generated_ffi_modules_are_up_to_date(tmp_path, target):
    spec = importlib.util.spec_from_file_location("ffi_build", FFI_BUILD)
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.TARGETS) == sorted(FFI_TARGETS)
    out = build.build(target, str(tmp_path))
    committed = os.path.join(os.path.dirname(LINUX_DIR), target + ".py")
    with open(out) as fresh, open(committed) as kept:
        assert fresh.read() == kept.read(), "run tools/ffi_build.py and commit"


def test_generated_ffi_version_is_accepted_by_old_backends():
    # cffi backends accept _version 0x2601..0x28FF from 1.8 on (Debian 12 ships 1.15.1).
    with open(_libc_ffi.__file__) as f:
        assert "_version=0x2601," in f.read()


def test_errors_carry_errno():
    with pytest.raises(OSError) as ei:
        libc.umount2("/nonexistent-mount-point-for-test")
    assert ei.value.errno in (errno.ENOENT, errno.EPERM)
    assert ei.value.filename == "/nonexistent-mount-point-for-test"


def test_prctl_and_capget():
    assert libc.prctl(libc.PR_CAPBSET_READ, 0) in (0, 1)
    eff, perm, _inh = libc.capget()
    assert eff & ~perm == 0


def test_capability_names():
    from ansible_collections.pycontainer.engine.plugins.module_utils.linux import capabilities
    from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.spec import DEFAULT_CAPABILITIES

    assert sum(1 << n for n in capabilities.numbers(DEFAULT_CAPABILITIES)) == 0xA80425FB
    with pytest.raises(ValueError):
        capabilities.numbers(["CAP_NOPE"])


def test_interface_up_unknown_interface():
    with pytest.raises(OSError) as ei:
        libc.interface_up("nosuchif0")
    assert ei.value.errno == errno.ENODEV


def _collection_path(tmp_path) -> str:
    """A sys.path entry where the engine is importable under its collection name, for other Pythons."""
    plugins = tmp_path / "ansible_collections" / "pycontainer" / "engine" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "module_utils").symlink_to(os.path.dirname(LINUX_DIR))
    return str(tmp_path)


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="no system python3")
def test_generated_module_works_with_the_system_cffi_backend(tmp_path):
    """Managed hosts run the engine with their distribution's backend (Debian 12: python3-cffi-backend
    1.15.1) and no cffi package at all."""
    import subprocess

    code = ("import _cffi_backend\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc\n"
            "print(_cffi_backend.__version__, libc.capget()[2], libc.prctl(libc.PR_CAPBSET_READ, 0))\n")
    proc = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": _collection_path(tmp_path), "PATH": os.environ["PATH"]}, check=False)
    if "No module named '_cffi_backend'" in proc.stderr or "cffi's backend" in proc.stderr:
        pytest.skip("system python3 has no cffi backend")
    assert proc.returncode == 0, proc.stderr
    version, inheritable, bounding = proc.stdout.split()
    assert version.split(".")[:2] >= ["1", "15"] and inheritable.isdigit() and bounding in ("0", "1")


def test_missing_backend_is_a_clear_engine_error(tmp_path):
    import subprocess
    import sys

    # Importing works without the backend (ansible-test's import test, modules that then report
    # missing_required_lib); the engine's error comes with the first syscall.
    code = ("import sys; sys.modules['_cffi_backend'] = None\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.errors import EngineError\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc, mounts, rootfs\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import init, launcher\n"
            "try:\n"
            "    libc.unshare(0)\n"
            "except EngineError as exc:\n"
            "    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": _collection_path(tmp_path), "PATH": os.environ["PATH"]}, check=False)
    assert "python3-cffi-backend" in proc.stdout, proc.stderr


def test_generated_modules_import_without_backend_and_fail_on_first_use(tmp_path):
    """ansible-test's import test imports every module_utils file where cffi is absent: the generated
    modules themselves must import (ffi is None); seccomp and nftables raise MissingLibrary when used."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['_cffi_backend'] = None\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.errors import MissingLibrary\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.linux import _libc_ffi, _seccomp_ffi\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.linux import seccomp\n"
            "from ansible_collections.pycontainer.engine.plugins.module_utils.network import _nft_ffi, nftables\n"
            "print(_libc_ffi.ffi, _seccomp_ffi.ffi, _nft_ffi.ffi, '_cffi_backend' in _nft_ffi.BACKEND_ERROR)\n"
            "for use in (lambda: seccomp.compile_bpf({'defaultAction': 'SCMP_ACT_ALLOW'}, []),\n"
            "            lambda: nftables.run([])):\n"
            "    try:\n"
            "        use()\n"
            "    except MissingLibrary as exc:\n"
            "        print(exc.library, exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": _collection_path(tmp_path), "PATH": os.environ["PATH"]}, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "None None None True"
    assert lines[1].startswith("cffi seccomp needs cffi's backend")
    assert lines[2].startswith("cffi port publishing and bridge networks need cffi's backend")
