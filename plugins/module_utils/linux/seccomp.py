"""Seccomp: Docker-format JSON profiles compiled with libseccomp to a BPF program, installed before exec.

The default profile is Docker's, built on the one Debian maintains in golang-github-containers-common
(``/usr/share/containers/seccomp.json``, same JSON format) rather than on a hand-kept syscall list. That file
is podman's: it relies on capabilities alone for mount/unshare/setns/reboot... and answers unknown syscalls
with ENOSYS. ``docker_default_profile`` applies Docker's differences as a small table:
  * default action errno EPERM;
  * syscalls Docker allows only with a capability (``_DOCKER_CAP_GATED``) are taken out of the unconditional
    allow list and allowed when that capability is granted;
  * ``clone`` creating namespaces needs CAP_SYS_ADMIN; ``clone3`` answers ENOSYS without it (so libc falls
    back to ``clone``, whose flags the filter can see);
  * the kernel keyring (keyctl, add_key, request_key) and pivot_root are refused (EPERM).

Compiling: the profile is filtered for the granted capabilities, architecture and kernel (Docker's
``includes``/``excludes``), turned into libseccomp rules and exported as a BPF program (``compile_bpf``,
cached per process). The container side only installs those bytes with ``prctl(PR_SET_SECCOMP)``
(``install``): libseccomp is never loaded in the container process. Without no-new-privileges the install
needs CAP_SYS_ADMIN, which the init still has (as root, before switching user).
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os

from ..errors import EngineError, InvalidArgument, MissingLibrary

DEFAULT_PROFILE_SOURCE = "/usr/share/containers/seccomp.json"

_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_SCMP_FLTATR_CTL_NNP = 3
_NR_SCMP_ERROR = -1
# uname machine -> Go's GOARCH (Docker's "arches") and libseccomp's arch name
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}
_GOARCH_ALIASES = {"x86": "386"}

# Docker's capability-gated syscalls (moby profiles/seccomp/default.json) that podman's profile allows to all.
_DOCKER_CAP_GATED = {
    "CAP_SYS_ADMIN": ("bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
                      "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
                      "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
                      "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}
_DOCKER_REFUSED = ("keyctl", "add_key", "request_key", "pivot_root")
_NAMESPACE_CLONE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

_default_profile: dict | None = None
_bpf_cache: dict[str, bytes] = {}


def load_profile(path: str) -> dict:
    """A profile file in Docker's JSON format (``--security-opt seccomp=<file>``)."""
    try:
        with open(path, "rb") as f:
            profile = json.load(f)
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidArgument(f"decoding seccomp profile ({path}) failed: {exc}") from None
    validate(profile)
    return profile


def validate(profile: object) -> None:
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument("seccomp profile: expected a JSON object with defaultAction")
    _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, dict) or not (rule.get("names") or rule.get("name")):
            raise InvalidArgument(f"seccomp profile: a syscall rule needs names: {rule!r}")
        _action(rule.get("action", ""), rule.get("errnoRet"))
        for arg in rule.get("args") or []:
            if arg.get("op") not in _OPS:
                raise InvalidArgument(f"seccomp profile: unknown operator {arg.get('op')!r}")


def docker_default_profile() -> dict:
    """Docker's default profile (see the module docstring), built once per process."""
    global _default_profile
    if _default_profile is None:
        try:
            with open(DEFAULT_PROFILE_SOURCE, "rb") as f:
                base = json.load(f)
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"cannot read the default seccomp profile {DEFAULT_PROFILE_SOURCE} ({exc}): install "
                "golang-github-containers-common, or run with --security-opt seccomp=unconfined") from None
        _default_profile = dockerize(base)
    return _default_profile


def dockerize(base: dict) -> dict:
    """Apply Docker's differences (module docstring) to a podman-style profile."""
    profile = copy.deepcopy(base)
    profile["defaultAction"] = "SCMP_ACT_ERRNO"
    profile["defaultErrnoRet"] = errno.EPERM
    profile.pop("defaultErrno", None)
    gated = {name for names in _DOCKER_CAP_GATED.values() for name in names}
    withheld = gated | set(_DOCKER_REFUSED) | {"clone", "clone3"}
    rules = []
    for rule in profile.get("syscalls") or []:
        unconditional = rule.get("action") == "SCMP_ACT_ALLOW" and not (rule.get("includes") or {}).get("caps")
        if unconditional:
            names = [n for n in rule.get("names") or [rule.get("name")] if n not in withheld]
            if not names:
                continue
            rule = {**rule, "names": names}
        rules.append(rule)
    for cap, names in _DOCKER_CAP_GATED.items():
        rules.append({"names": list(names), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    rules += [
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "args": [{"index": 0, "value": _NAMESPACE_CLONE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    ]
    profile["syscalls"] = rules
    return profile


def _action(name: str, errno_ret: object = None) -> int:
    if name not in _ACTIONS:
        raise InvalidArgument(f"seccomp profile: unsupported action {name!r}")
    value = _ACTIONS[name]
    if name == "SCMP_ACT_ERRNO" or name == "SCMP_ACT_TRACE":
        value |= (errno_ret if isinstance(errno_ret, int) else errno.EPERM) & 0xFFFF
    return value


def _kernel_version() -> tuple[int, ...]:
    release = os.uname().release
    nums = []
    for part in release.split("-")[0].split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        nums.append(int(digits or 0))
    return tuple(nums)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in text.split(".")[:3])


def applies(rule: dict, caps: set[str], goarch: str, kernel: tuple[int, ...]) -> bool:
    """Docker's includes/excludes: every included cap granted, no excluded one; arch; minimum kernel."""
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    arches = [_GOARCH_ALIASES.get(a, a) for a in inc.get("arches") or []]
    if arches and goarch not in arches:
        return False
    if goarch in [_GOARCH_ALIASES.get(a, a) for a in exc.get("arches") or []]:
        return False
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return False
    return not (exc.get("minKernel") and kernel >= _version(exc["minKernel"]))


def _lib():
    from ._seccomp_ffi import BACKEND_ERROR, ffi  # imports anywhere: ffi is None without cffi's backend

    if ffi is None:
        raise MissingLibrary(f"seccomp needs cffi's backend: {BACKEND_ERROR}", library="cffi", purpose="seccomp")
    try:
        return ffi, ffi.dlopen("libseccomp.so.2")
    except OSError as exc:
        raise EngineError(f"seccomp needs libseccomp (Debian: libseccomp2): {exc}") from None


def compile_bpf(profile: dict, caps: set[str] | list[str]) -> bytes:
    """The BPF program (struct sock_filter array) enforcing ``profile`` for a process with ``caps``."""
    caps = set(caps)
    key = hashlib.sha256(json.dumps([profile, sorted(caps)], sort_keys=True).encode()).hexdigest()
    cached = _bpf_cache.get(key)
    if cached is not None:
        return cached
    ffi, lib = _lib()
    machine = os.uname().machine
    goarch = _GOARCH.get(machine, machine)
    kernel = _kernel_version()
    default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise EngineError("seccomp_init failed")
    try:
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0)  # no_new_privs is Docker's opt-in, not ours
        native = lib.seccomp_arch_native()
        for arch in _extra_arches(profile, machine):
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token and token != native:
                lib.seccomp_arch_add(ctx, token)
        unconditional: set[str] = set()
        for rule in profile.get("syscalls") or []:
            if not applies(rule, caps, goarch, kernel):
                continue
            action = _action(rule.get("action", ""), rule.get("errnoRet"))
            args = rule.get("args") or []
            for name in rule.get("names") or [rule.get("name")]:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # a syscall this architecture does not have
                if not args:
                    if name in unconditional:
                        continue  # an earlier unconditional rule decided this syscall
                    unconditional.add(name)
                    if action == default:
                        continue  # libseccomp refuses rules that repeat the default action
                _add_rule(ffi, lib, ctx, action, nr, name, args)
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            ret = lib.seccomp_export_bpf(ctx, fd)
            if ret < 0:
                raise EngineError(f"seccomp_export_bpf failed: {os.strerror(-ret)}")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            program = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    _bpf_cache[key] = program
    return program


def _extra_arches(profile: dict, machine: str) -> list[str]:
    native = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(machine, machine)
    out = []
    for entry in profile.get("archMap") or []:
        if _arch_name(entry.get("architecture", "")) == native:
            out += [_arch_name(a) for a in entry.get("subArchitectures") or []]
    out += [_arch_name(a) for a in profile.get("architectures") or []]
    return out


def _arch_name(scmp: str) -> str:
    return scmp.removeprefix("SCMP_ARCH_").lower()


def _add_rule(ffi, lib, ctx, action: int, nr: int, name: str, args: list[dict]) -> None:
    def conds(items: list[dict]):
        arr = ffi.new("struct scmp_arg_cmp[]", len(items))
        for i, a in enumerate(items):
            arr[i].arg = a["index"]
            arr[i].op = _OPS[a["op"]]
            arr[i].datum_a = a.get("value", 0) & 0xFFFFFFFFFFFFFFFF
            arr[i].datum_b = a.get("valueTwo", 0) & 0xFFFFFFFFFFFFFFFF
        return arr

    indexes = [a["index"] for a in args]
    # libseccomp ANDs the conditions of one rule, one per argument; several on one argument are ORed, as
    # Docker (runc) does, by adding one rule per condition.
    groups = [[a] for a in args] if len(set(indexes)) != len(indexes) else [args]
    for group in groups:
        ret = lib.seccomp_rule_add_array(ctx, action, nr, len(group), conds(group) if group else ffi.NULL)
        if ret < 0 and -ret != errno.EEXIST:
            raise EngineError(f"seccomp: cannot add a rule for {name}: {os.strerror(-ret)}")


def install(program: bytes, no_new_privileges: bool = False) -> None:
    """Install a BPF program on the calling thread (tests; the container's init calls libc directly)."""
    from . import libc

    if no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if program:
        libc.seccomp_set_filter(program)
