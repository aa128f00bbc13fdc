"""Device access rules: one model for both cgroup versions.

A rule list is what Docker's spec carries: ``(type, major, minor, access, allow)`` in order, read with the
v1 devices controller's semantics (which runc's device emulator reproduces for v2 as well):

- a rule of type ``a`` resets everything: allow-all (``a`` written to devices.allow) or deny-all (devices.deny),
  dropping every exception so far; its major, minor and access are ignored, as the kernel ignores them;
- any other rule whose polarity differs from the default is an exception (an allow on a deny-all default);
  one with the default's polarity takes its access bits away from the exception of the same type:major:minor.

Two outputs of one list: ``v1_writes`` (the lines for devices.deny/devices.allow) and ``program`` (a
BPF_PROG_TYPE_CGROUP_DEVICE program, built like runc's devicefilter: one block per exception, the default at
the end). ``attach`` loads and attaches the program to a v2 cgroup directory through the syscall layer.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from dataclasses import dataclass

from .base import CgroupError
from .limits import parse_device_rule

WILDCARD = -1
ACCESS = "rwm"

# struct bpf_cgroup_dev_ctx.access_type: (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*
DEV_BLOCK = 1
DEV_CHAR = 2
ACC_MKNOD = 1
ACC_READ = 2
ACC_WRITE = 4
_ACC_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# eBPF opcodes (linux/bpf_common.h, linux/bpf.h)
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
EXIT = 0x95  # BPF_JMP | BPF_EXIT

# Registers: r1 = ctx; the prologue loads r2 = type, r3 = access, r4 = major, r5 = minor.
R0, R1, R2, R3, R4, R5 = range(6)


@dataclass(frozen=True)
class DeviceRule:
    kind: str  # "a" (all: resets), "b" block, "c" char
    major: int = WILDCARD
    minor: int = WILDCARD
    access: str = ACCESS
    allow: bool = True

    @classmethod
    def parse(cls, text: str, allow: bool = True) -> DeviceRule:
        """'c 1:3 rwm', 'b *:* m', 'a' (Docker's --device-cgroup-rule syntax). Raises ValueError."""
        kind, major, minor, access = parse_device_rule(text)
        return cls(kind, _number(major), _number(minor), "".join(c for c in ACCESS if c in access), allow)

    def v1_line(self) -> str:
        if self.kind == "a":
            return "a"
        return f"{self.kind} {_text(self.major)}:{_text(self.minor)} {self.access}"


def _number(value: str) -> int:
    return WILDCARD if value == "*" else int(value)


def _text(value: int) -> str:
    return "*" if value == WILDCARD else str(value)


def container_rules(allowed: list[str] | None) -> list[DeviceRule] | None:
    """The rules of a container: deny everything, then allow ``allowed`` (CgroupConfig.device_rules, Docker's
    defaults plus --device and --device-cgroup-rule entries). None (--privileged) stays None: no restriction."""
    if allowed is None:
        return None
    try:
        return [DeviceRule("a", allow=False), *(DeviceRule.parse(rule) for rule in allowed)]
    except ValueError as exc:
        raise CgroupError(str(exc)) from None


def v1_writes(rules: list[DeviceRule]) -> list[tuple[str, str]]:
    """(file, line) pairs for a v1 devices cgroup, in order: devices.deny for denials, devices.allow else."""
    return [("devices.allow" if rule.allow else "devices.deny", rule.v1_line()) for rule in rules]


def emulate(rules: list[DeviceRule]) -> tuple[bool, list[DeviceRule]]:
    """What the v1 controller holds after ``rules``: (default allow?, exceptions with the other polarity)."""
    default_allow = True  # a new v1 cgroup with no rule allows everything (the root's behaviour)
    exceptions: list[DeviceRule] = []
    for rule in rules:
        if rule.kind == "a":
            default_allow, exceptions = rule.allow, []
            continue
        if rule.allow != default_allow:
            same = [e for e in exceptions if (e.kind, e.major, e.minor) == (rule.kind, rule.major, rule.minor)]
            if same:
                merged = "".join(c for c in ACCESS if c in same[0].access + rule.access)
                exceptions[exceptions.index(same[0])] = DeviceRule(rule.kind, rule.major, rule.minor, merged,
                                                                   rule.allow)
            else:
                exceptions.append(rule)
            continue
        # The default's polarity: take these access bits away from the matching exception.
        for i, e in enumerate(exceptions):
            if (e.kind, e.major, e.minor) == (rule.kind, rule.major, rule.minor):
                left = "".join(c for c in e.access if c not in rule.access)
                exceptions[i] = DeviceRule(e.kind, e.major, e.minor, left, e.allow)
        exceptions = [e for e in exceptions if e.access]
    return default_allow, exceptions


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One struct bpf_insn: the register nibbles' order follows the bitfield layout of the byte order."""
    regs = (src << 4 | dst) if sys.byteorder == "little" else (dst << 4 | src)
    return struct.pack("=BBhi", code, regs, off, imm)


def program(rules: list[DeviceRule]) -> bytes:
    """The BPF_PROG_TYPE_CGROUP_DEVICE program for ``rules`` (struct bpf_insn[] bytes): returns 1 to allow."""
    default_allow, exceptions = emulate(rules)
    out = [
        _insn(LDX_MEM_W, R2, R1, 0),  # r2 = access_type
        _insn(ALU32_AND_K, R2, imm=0xFFFF),  # r2 = device type
        _insn(LDX_MEM_W, R3, R1, 0),
        _insn(ALU32_RSH_K, R3, imm=16),  # r3 = requested access
        _insn(LDX_MEM_W, R4, R1, 4),  # r4 = major
        _insn(LDX_MEM_W, R5, R1, 8),  # r5 = minor
    ]
    for rule in exceptions:
        # (opcode, dst, src, imm) of each test; a failed test jumps past this block (to the next one).
        tests: list[tuple[int, int, int, int]] = []
        if rule.kind != "a":
            tests.append((JNE_K, R2, 0, DEV_BLOCK if rule.kind == "b" else DEV_CHAR))
        access = sum(_ACC_BITS[c] for c in rule.access)
        if access != ACC_MKNOD | ACC_READ | ACC_WRITE:
            # every requested bit must be in the rule: (r3 & access) == r3, r1 as scratch (ctx is loaded)
            tests.append((ALU32_MOV_X, R1, R3, 0))
            tests.append((ALU32_AND_K, R1, 0, access))
            tests.append((JNE_X, R1, R3, 0))
        if rule.major != WILDCARD:
            tests.append((JNE_K, R4, 0, rule.major))
        if rule.minor != WILDCARD:
            tests.append((JNE_K, R5, 0, rule.minor))
        block_len = len(tests) + 2  # the tests, then mov r0 + exit
        for i, (code, dst, src, imm) in enumerate(tests):
            jump = block_len - i - 1 if code in (JNE_K, JNE_X) else 0
            out.append(_insn(code, dst, src, jump, imm))
        out.append(_insn(ALU32_MOV_K, R0, imm=int(rule.allow)))
        out.append(_insn(EXIT))
    out.append(_insn(ALU32_MOV_K, R0, imm=int(default_allow)))
    out.append(_insn(EXIT))
    return b"".join(out)


def attach(cgroup_dir: str, rules: list[DeviceRule]) -> None:
    """Load ``program(rules)`` and attach it to the v2 cgroup ``cgroup_dir`` (BPF_F_ALLOW_MULTI, like runc),
    then detach any device program attached there before (an earlier create): it takes effect before a
    process of the container runs, and no window is left without a filter."""
    from .. import libc

    insns = program(rules)
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupError(f"cannot open cgroup {cgroup_dir}: {exc.strerror}") from None
    try:
        try:
            old = libc.bpf_prog_query(dir_fd, libc.BPF_CGROUP_DEVICE)
            prog_fd = libc.bpf_prog_load(libc.BPF_PROG_TYPE_CGROUP_DEVICE, insns)
            try:
                libc.bpf_prog_attach(dir_fd, prog_fd, libc.BPF_CGROUP_DEVICE, libc.BPF_F_ALLOW_MULTI)
            finally:
                os.close(prog_fd)  # the attachment holds the program
        except OSError as exc:
            raise CgroupError(f"cannot restrict device access of cgroup {cgroup_dir}: {exc.strerror or exc}") \
                from None
        for prog_id in old:
            with contextlib.suppress(OSError):  # gone meanwhile: nothing to detach
                old_fd = libc.bpf_prog_get_fd_by_id(prog_id)
                try:
                    libc.bpf_prog_detach(dir_fd, old_fd, libc.BPF_CGROUP_DEVICE)
                finally:
                    os.close(old_fd)
    finally:
        os.close(dir_fd)
