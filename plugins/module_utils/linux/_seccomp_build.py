"""Generate ``_seccomp_ffi.py``: cffi declarations of the libseccomp calls the engine makes.

Out-of-line ABI mode, like ``_libc_build.py``: nothing is compiled, only libseccomp.so.2 (Debian:
libseccomp2) and cffi's backend are needed at run time. Regenerate after editing the cdef (the output is
committed):

    .venv/bin/python plugins/module_utils/linux/_seccomp_build.py
"""

from __future__ import annotations

import os

from ansible_collections.pycontainer.engine.plugins.module_utils.linux._cffi_gen import emit

CDEF = """
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


def build(out_dir: str | None = None) -> str:
    return emit(CDEF, "_seccomp_ffi", out_dir or os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    print(build())
