"""Device rules: one model, the v1 writes, the v2 BPF program (decoded and executed here), and where the
backends use them. The kernel is faked only behind the syscall layer (a recording bpf())."""

from __future__ import annotations

import os
import struct
import sys

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import cgroups, libc
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups import detect, devices
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.base import CgroupError
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.v1 import V1Backend
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.v2 import V2Backend

DEFAULTS = list(cgroups.DEFAULT_DEVICE_RULES)
HOST_DISK = (8, 0)  # sda


def decode(program: bytes) -> list[tuple[int, int, int, int, int]]:
    """(code, dst, src, off, imm) per struct bpf_insn."""
    out = []
    for i in range(0, len(program), 8):
        code, regs, off, imm = struct.unpack("=BBhi", program[i:i + 8])
        dst, src = (regs & 0xF, regs >> 4) if sys.byteorder == "little" else (regs >> 4, regs & 0xF)
        out.append((code, dst, src, off, imm))
    return out


def run(program: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Execute the program for one access, as the kernel would (the opcodes the generator emits only)."""
    dev = devices.DEV_BLOCK if kind == "b" else devices.DEV_CHAR
    acc = sum({"r": devices.ACC_READ, "w": devices.ACC_WRITE, "m": devices.ACC_MKNOD}[c] for c in access)
    ctx = struct.pack("=III", acc << 16 | dev, major, minor)
    regs = [0] * 11
    insns = decode(program)
    pc = 0
    while True:
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == devices.LDX_MEM_W:
            assert src == 1  # only the context is read
            regs[dst] = struct.unpack_from("=I", ctx, off)[0]
        elif code == devices.ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == devices.ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == devices.ALU32_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == devices.ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == devices.JNE_K:
            pc += off if regs[dst] != imm else 0
        elif code == devices.JNE_X:
            pc += off if regs[dst] != regs[src] else 0
        elif code == devices.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_default_program_matches_dockers_allow_list():
    prog = devices.program(devices.container_rules(DEFAULTS))
    allowed = [("c", 1, 3, "rw"), ("c", 1, 5, "rwm"), ("c", 1, 7, "w"), ("c", 1, 8, "r"), ("c", 1, 9, "r"),
               ("c", 5, 0, "rw"), ("c", 5, 1, "rw"), ("c", 5, 2, "rw"), ("c", 136, 7, "rw"), ("c", 10, 200, "rw"),
               ("b", *HOST_DISK, "m"), ("c", 4, 1, "m")]  # mknod of any node: Docker's "c *:* m", "b *:* m"
    denied = [("b", *HOST_DISK, "r"), ("b", *HOST_DISK, "rw"), ("b", 7, 0, "r"), ("c", 1, 1, "r"),  # mem
              ("c", 10, 229, "rw"), ("c", 4, 1, "w"), ("b", *HOST_DISK, "rm")]
    for kind, major, minor, access in allowed:
        assert run(prog, kind, major, minor, access) == 1, (kind, major, minor, access)
    for kind, major, minor, access in denied:
        assert run(prog, kind, major, minor, access) == 0, (kind, major, minor, access)


def test_program_instructions_for_a_rule_list():
    """Same shape as runc's devicefilter: prologue, one block per exception, the default at the end."""
    prog = devices.program(devices.container_rules(["c 1:3 rwm", "b 8:* r"]))
    d = devices
    assert decode(prog) == [
        (d.LDX_MEM_W, 2, 1, 0, 0), (d.ALU32_AND_K, 2, 0, 0, 0xFFFF),
        (d.LDX_MEM_W, 3, 1, 0, 0), (d.ALU32_RSH_K, 3, 0, 0, 16),
        (d.LDX_MEM_W, 4, 1, 4, 0), (d.LDX_MEM_W, 5, 1, 8, 0),
        # c 1:3 rwm: no access test
        (d.JNE_K, 2, 0, 4, d.DEV_CHAR), (d.JNE_K, 4, 0, 3, 1), (d.JNE_K, 5, 0, 2, 3),
        (d.ALU32_MOV_K, 0, 0, 0, 1), (d.EXIT, 0, 0, 0, 0),
        # b 8:* r: access subset test, no minor test
        (d.JNE_K, 2, 0, 6, d.DEV_BLOCK), (d.ALU32_MOV_X, 1, 3, 0, 0), (d.ALU32_AND_K, 1, 0, 0, d.ACC_READ),
        (d.JNE_X, 1, 3, 3, 0), (d.JNE_K, 4, 0, 2, 8),
        (d.ALU32_MOV_K, 0, 0, 0, 1), (d.EXIT, 0, 0, 0, 0),
        (d.ALU32_MOV_K, 0, 0, 0, 0), (d.EXIT, 0, 0, 0, 0),  # default: deny
    ]


def test_device_flag_rule_allows_only_its_access():
    # --device /dev/sda:/dev/xvda:r adds "b 8:0 r" (runtime/isolation.py devices_for)
    prog = devices.program(devices.container_rules([*DEFAULTS, "b 8:0 r"]))
    assert run(prog, "b", 8, 0, "r") == 1
    assert run(prog, "b", 8, 0, "rw") == 0 and run(prog, "b", 8, 1, "r") == 0


def test_v1_semantics_shared_by_both_outputs():
    rules = [devices.DeviceRule("a", allow=False), devices.DeviceRule.parse("c 1:3 rwm"),
             devices.DeviceRule.parse("c 1:3 w", allow=False), devices.DeviceRule.parse("c 1:5 r"),
             devices.DeviceRule.parse("c 1:5 w")]
    default_allow, exceptions = devices.emulate(rules)
    assert not default_allow
    assert [(e.kind, e.major, e.minor, e.access) for e in exceptions] == [("c", 1, 3, "rm"), ("c", 1, 5, "rw")]
    assert devices.v1_writes(rules) == [("devices.deny", "a"), ("devices.allow", "c 1:3 rwm"),
                                        ("devices.deny", "c 1:3 w"), ("devices.allow", "c 1:5 r"),
                                        ("devices.allow", "c 1:5 w")]
    prog = devices.program(rules)
    assert run(prog, "c", 1, 3, "r") == 1 and run(prog, "c", 1, 3, "w") == 0
    # an "a" rule resets everything, whatever its access (the kernel ignores the rest of the line)
    reset = devices.emulate([*rules, devices.DeviceRule.parse("a *:* m")])
    assert reset == (True, [])
    assert run(devices.program([*rules, devices.DeviceRule.parse("a *:* m")]), "b", 8, 0, "rw") == 1


def test_container_rules_default_deny_and_privileged():
    rules = devices.container_rules(DEFAULTS)
    assert rules[0] == devices.DeviceRule("a", allow=False)
    assert [r.v1_line() for r in rules[1:]] == DEFAULTS
    assert devices.container_rules(None) is None
    with pytest.raises(CgroupError):
        devices.container_rules(["x 1:2 rwm"])


class RecordingBpf:
    """Stands in for the bpf(2) wrappers of the syscall layer."""

    def __init__(self, attached=()):
        self.calls: list[tuple] = []
        self.attached = list(attached)
        self.next_fd = os.open("/dev/null", os.O_RDONLY)  # a real fd: attach closes what load returns

    def install(self, monkeypatch):
        monkeypatch.setattr(libc, "bpf_prog_query", self.query)
        monkeypatch.setattr(libc, "bpf_prog_load", self.load)
        monkeypatch.setattr(libc, "bpf_prog_attach", self.attach)
        monkeypatch.setattr(libc, "bpf_prog_get_fd_by_id", self.get_fd)
        monkeypatch.setattr(libc, "bpf_prog_detach", self.detach)
        return self

    def query(self, target_fd, attach_type):
        self.calls.append(("query", attach_type))
        return list(self.attached)

    def load(self, prog_type, insns):
        self.calls.append(("load", prog_type, insns))
        return os.dup(self.next_fd)

    def attach(self, target_fd, prog_fd, attach_type, flags):
        self.calls.append(("attach", os.readlink(f"/proc/self/fd/{target_fd}"), attach_type, flags))

    def get_fd(self, prog_id):
        self.calls.append(("get_fd", prog_id))
        return os.dup(self.next_fd)

    def detach(self, target_fd, prog_fd, attach_type):
        self.calls.append(("detach", attach_type))


def test_v2_create_attaches_the_program(tmp_path, monkeypatch):
    bpf = RecordingBpf(attached=[41]).install(monkeypatch)
    config = cgroups.CgroupConfig(device_rules=[*DEFAULTS, "b 8:0 r"])
    cg = V2Backend(str(tmp_path)).container("c1", config)
    cg.create()
    load = [c for c in bpf.calls if c[0] == "load"]
    assert len(load) == 1 and load[0][1] == libc.BPF_PROG_TYPE_CGROUP_DEVICE
    assert load[0][2] == devices.program(devices.container_rules(config.device_rules))
    assert ("attach", cg.dir, libc.BPF_CGROUP_DEVICE, libc.BPF_F_ALLOW_MULTI) in bpf.calls
    # an earlier program on the same cgroup is detached after the new one is in place
    kinds = [c[0] for c in bpf.calls]
    assert kinds.index("attach") < kinds.index("detach") and ("get_fd", 41) in bpf.calls


def test_v2_privileged_gets_no_program(tmp_path, monkeypatch):
    bpf = RecordingBpf().install(monkeypatch)
    V2Backend(str(tmp_path)).container("c1", cgroups.CgroupConfig(device_rules=None)).create()
    assert bpf.calls == []


def test_v2_custom_rules_are_no_longer_refused(tmp_path, monkeypatch):
    RecordingBpf().install(monkeypatch)
    V2Backend(str(tmp_path)).container("c1", cgroups.CgroupConfig(device_rules=["c 10:200 rwm"])).create()


def fake_mounts(tmp_path, controllers, unified=False) -> str:
    """A mountinfo text naming tmp dirs as the cgroup mounts."""
    lines = []
    for i, name in enumerate(controllers):
        path = tmp_path / name
        path.mkdir()
        lines.append(f"{30 + i} 20 0:{30 + i} / {path} rw,relatime - cgroup cgroup rw,{name}")
    if unified:
        (tmp_path / "unified").mkdir()
        lines.append(f"99 20 0:99 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw")
    return "\n".join(lines) + "\n"


def backend_from(text: str):
    unified, v1 = detect.parse_mountinfo(text)
    return V1Backend(v1, unified)


def test_v1_without_devices_hierarchy_is_an_error(tmp_path):
    backend = backend_from(fake_mounts(tmp_path, ["cpu", "memory", "pids", "freezer"]))
    cg = backend.container("c1", cgroups.CgroupConfig())
    with pytest.raises(CgroupError, match="devices cgroup controller is not mounted"):
        cg.create()
    assert not cg.exists()  # refused before anything was made


def test_v1_without_devices_hierarchy_privileged_is_fine(tmp_path):
    backend = backend_from(fake_mounts(tmp_path, ["cpu", "memory"]))
    cg = backend.container("c1", cgroups.CgroupConfig(device_rules=None))
    cg.create()
    assert cg.exists()


def test_hybrid_without_v1_devices_uses_the_v2_program(tmp_path, monkeypatch):
    bpf = RecordingBpf().install(monkeypatch)
    backend = backend_from(fake_mounts(tmp_path, ["cpu", "memory"], unified=True))
    cg = backend.container("c1", cgroups.CgroupConfig())
    cg.create()
    assert ("attach", cg.unified_dir, libc.BPF_CGROUP_DEVICE, libc.BPF_F_ALLOW_MULTI) in bpf.calls


def test_v1_writes_the_same_rules(tmp_path, monkeypatch):
    from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups import v1

    written: list[tuple[str, str]] = []
    monkeypatch.setattr(v1, "write", lambda path, value: written.append((os.path.basename(path), str(value))))
    backend = backend_from(fake_mounts(tmp_path, ["devices"]))
    backend.container("c1", cgroups.CgroupConfig()).create()
    assert written == devices.v1_writes(devices.container_rules(DEFAULTS))
    assert written[0] == ("devices.deny", "a")
    written.clear()
    backend.container("c2", cgroups.CgroupConfig(device_rules=None)).create()
    assert written == [("devices.allow", "a")]
