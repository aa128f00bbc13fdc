"""Generate the engine's cffi modules (out-of-line ABI mode) from the C declarations below. Developer-only.

Parsing a ``cdef()`` at import costs ~56 ms per process; a generated module holds the pre-parsed type table
and loads in well under a millisecond. Nothing is compiled, so managed hosts need only the
``_cffi_backend`` extension (Debian: python3-cffi-backend), never the cffi package. This script needs cffi
itself, which is why it lives outside ``plugins/`` (nothing imports it at run time, and it is not shipped).

Regenerate after editing a cdef (the output is committed; ``tests/unit/linux/test_libc.py`` checks it is up
to date):

    .venv/bin/python tools/ffi_build.py

cffi's ``emit_python_code`` writes ``import _cffi_backend`` at the top and one ~2 kB line per table. We keep
its values and write them out ourselves: the backend import is guarded (the modules import anywhere, as
ansible-test's import test and modules reporting ``missing_required_lib`` need; the engine raises
MissingLibrary on first use) and lines stay short enough for pep8 and ruff. Keep the cdefs to plain C that
cffi 1.15 also understands; the emitted ``_version`` (0x2601) is accepted by every backend from 1.8 to 2.x.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")

LIBC_CDEF = """
typedef unsigned int gid_t;
typedef unsigned int uid_t;
typedef int pid_t;

/* namespaces */
int unshare(int flags);
int setns(int fd, int nstype);

/* mounts (pivot_root and the new mount API go through syscall()) */
int mount(const char *source, const char *target, const char *filesystemtype,
          unsigned long mountflags, const void *data);
int umount2(const char *target, int flags);

struct mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

long syscall(long number, ...);

/* identity */
int sethostname(const char *name, size_t len);
int setdomainname(const char *name, size_t len);
int setgroups(size_t size, const gid_t *list);
int setresuid(uid_t ruid, uid_t euid, uid_t suid);
int setresgid(gid_t rgid, gid_t egid, gid_t sgid);

/* process control and capabilities */
int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);

struct __user_cap_header_struct {
    uint32_t version;
    int pid;
};
struct __user_cap_data_struct {
    uint32_t effective;
    uint32_t permitted;
    uint32_t inheritable;
};
int capget(struct __user_cap_header_struct *hdrp, struct __user_cap_data_struct *datap);
int capset(struct __user_cap_header_struct *hdrp, const struct __user_cap_data_struct *datap);

/* file change notification (events --follow) */
int inotify_init1(int flags);
int inotify_add_watch(int fd, const char *pathname, uint32_t mask);

/* fds and devices */
int close_range(unsigned int first, unsigned int last, int flags);
int ioctl(int fd, unsigned long request, ...);
int socket(int domain, int type, int protocol);

/* SIOCGIFFLAGS / SIOCSIFFLAGS view of struct ifreq (40 bytes on 64-bit, 32 on 32-bit) */
struct ifreq_flags {
    char ifr_name[16];
    short ifr_flags;
    char _pad[22];
};

/* bpf(2) through syscall(): the members of union bpf_attr that cgroup device programs use (linux/bpf.h).
   uint64_t members are the kernel's __aligned_u64 (pointers); the kernel takes any prefix of the union. */
struct bpf_attr_prog_load {
    uint32_t prog_type;
    uint32_t insn_cnt;
    uint64_t insns;
    uint64_t license;
    uint32_t log_level;
    uint32_t log_size;
    uint64_t log_buf;
    uint32_t kern_version;
    uint32_t prog_flags;
    char prog_name[16];
    uint32_t prog_ifindex;
    uint32_t expected_attach_type;
};
struct bpf_attr_prog_attach {
    uint32_t target_fd;
    uint32_t attach_bpf_fd;
    uint32_t attach_type;
    uint32_t attach_flags;
    uint32_t replace_bpf_fd;
};
struct bpf_attr_prog_query {
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t query_flags;
    uint32_t attach_flags;
    uint64_t prog_ids;
    uint32_t prog_cnt;
};
struct bpf_attr_get_id {
    uint32_t id;
    uint32_t next_id;
    uint32_t open_flags;
};
"""

# libseccomp.so.2 (Debian: libseccomp2), opened by linux/seccomp.py.
SECCOMP_CDEF = """
typedef void *scmp_filter_ctx;

struct scmp_arg_cmp {
    unsigned int arg;
    int op;
    uint64_t datum_a;
    uint64_t datum_b;
};

struct scmp_version {
    unsigned int major;
    unsigned int minor;
    unsigned int micro;
};

const struct scmp_version *seccomp_version(void);
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_native(void);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_arch_exist(const scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                           const struct scmp_arg_cmp *arg_array);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
"""

# libnftables.so.1 (Debian: libnftables1), opened by network/nftables.py.
NFT_CDEF = """
struct nft_ctx;
struct nft_ctx *nft_ctx_new(uint32_t flags);
void nft_ctx_free(struct nft_ctx *ctx);
unsigned int nft_ctx_output_get_flags(struct nft_ctx *ctx);
void nft_ctx_output_set_flags(struct nft_ctx *ctx, unsigned int flags);
int nft_ctx_buffer_output(struct nft_ctx *ctx);
const char *nft_ctx_get_output_buffer(struct nft_ctx *ctx);
int nft_ctx_buffer_error(struct nft_ctx *ctx);
const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx);
int nft_run_cmd_from_buffer(struct nft_ctx *nft, const char *buf);
"""

# Generated module (path under plugins/module_utils, without .py) -> (what it declares, cdef).
TARGETS: dict[str, tuple[str, str]] = {
    "linux/_libc_ffi": ("the libc calls the engine makes (linux/libc.py)", LIBC_CDEF),
    "linux/_seccomp_ffi": ("the libseccomp calls of linux/seccomp.py", SECCOMP_CDEF),
    "network/_nft_ffi": ("the libnftables calls of network/nftables.py", NFT_CDEF),
}

WIDTH = 110  # under ruff's 120 and pep8's 160
INDENT = "    "


def cffi_arguments(cdef: str, module_name: str) -> tuple[str, dict[str, object]]:
    """The module name and keyword arguments cffi's emit_python_code passes to ``_cffi_backend.FFI``."""
    import cffi  # developer-only dependency

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(module_name, None)
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        path = os.path.join(scratch, f"{module_name}.py")
        ffi.emit_python_code(path)  # prints "generating <path>"
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "FFI"]
    if len(calls) != 1 or len(calls[0].args) != 1:
        raise RuntimeError(f"unexpected emit_python_code output for {module_name}: expected one FFI(name, ...) call")
    call = calls[0]
    # Every argument is a literal (bytes, ints, tuples of them): cffi's own emitter only writes those.
    return ast.literal_eval(call.args[0]), {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def _bytes_chunks(value: bytes, width: int) -> list[str]:
    """``value`` as literals of at most ``width`` characters each (split between bytes, never in an escape)."""
    chunks: list[str] = []
    start = 0
    while start < len(value):
        end = start + 1
        while end < len(value) and len(repr(value[start:end + 1])) <= width:
            end += 1
        chunks.append(repr(value[start:end]))
        start = end
    return chunks


def render(value: object, indent: str) -> list[str]:
    """Source lines for a literal whose first line starts at ``indent``; the others start with ``indent``."""
    inner = indent + INDENT
    if isinstance(value, bool) or not isinstance(value, (bytes, tuple, int)):
        raise TypeError(f"unexpected value in cffi's output: {value!r}")
    if isinstance(value, int):
        return [repr(value)]
    if isinstance(value, bytes):
        if len(indent) + len(repr(value)) + 2 <= WIDTH:
            return [repr(value)]
        return ["(", *(inner + chunk for chunk in _bytes_chunks(value, WIDTH - len(inner))), indent + ")"]
    if not value:
        return ["()"]
    lines = ["("]
    packed = ""  # short items share a line (cffi's _globals alternate names and 0)
    for item in value:
        item_lines = render(item, inner)
        if len(item_lines) == 1 and len(inner) + len(packed) + len(item_lines[0]) + 2 <= WIDTH:
            packed += item_lines[0] + ", "
            continue
        if packed:
            lines.append(inner + packed.rstrip())
            packed = ""
        if len(item_lines) == 1:
            packed = item_lines[0] + ", "
            continue
        lines.append(inner + item_lines[0])
        lines.extend(item_lines[1:])
        lines[-1] += ","
    if packed:
        lines.append(inner + packed.rstrip())
    lines.append(indent + ")")
    return lines


def module_source(target: str) -> str:
    """The text of the generated module ``target`` (a TARGETS key)."""
    what, cdef = TARGETS[target]
    module_name = os.path.basename(target)
    name, arguments = cffi_arguments(cdef, module_name)
    body = ["ffi = _cffi_backend.FFI(", f"{INDENT}{name!r},"]
    for key, value in arguments.items():
        # _version in hex as cffi writes it (tests/unit/linux/test_libc.py checks it stays 0x2601).
        lines = [hex(value)] if key == "_version" else render(value, INDENT)
        rendered = ast.literal_eval("\n".join(lines))
        if rendered != value:  # the rewrite must keep every table byte for byte
            raise RuntimeError(f"{module_name}: {key} does not round-trip")
        body.append(f"{INDENT}{key}={lines[0]}")
        body.extend(lines[1:])
        body[-1] += ","
    body.append(")")
    header = [
        f'"""cffi declarations of {what}: pre-parsed by cffi (out-of-line ABI mode).',
        "",
        "Generated by tools/ffi_build.py from cffi's emit_python_code: edit the cdef there and regenerate,",
        "never edit this file. It imports without cffi's backend (``ffi`` is None, BACKEND_ERROR says why):",
        "the engine raises MissingLibrary on first use.",
        '"""',
        "",
        "try:",
        f"{INDENT}import _cffi_backend",
        "except ImportError as _exc:",
        f"{INDENT}ffi = None",
        f"{INDENT}BACKEND_ERROR = str(_exc)",
        "else:",
        f"{INDENT}BACKEND_ERROR = ''",
    ]
    return "\n".join(header + [INDENT + line if line else line for line in body]) + "\n"


def build(target: str, out_dir: str | None = None) -> str:
    """Write the generated module ``target`` into ``out_dir`` (default: its place in plugins); its path."""
    directory = out_dir or os.path.join(MODULE_UTILS, os.path.dirname(target))
    path = os.path.join(directory, os.path.basename(target) + ".py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(module_source(target))
    return path


def main(argv: list[str]) -> int:
    for target in argv or list(TARGETS):
        sys.stdout.write(build(target) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
