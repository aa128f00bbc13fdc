"""Generate ``_libc_ffi.py``: the cffi declarations of the libc calls the engine makes.

Out-of-line ABI mode: parsing a ``cdef()`` at import costs ~56 ms per process; the generated module holds
the pre-parsed type table and loads in well under a millisecond. Nothing is compiled, so only the
``_cffi_backend`` extension (Debian: python3-cffi-backend) is needed on managed hosts.

Regenerate after editing the cdef (the output is committed):

    .venv/bin/python plugins/module_utils/linux/_libc_build.py

Keep the cdef to plain C that cffi 1.15 also understands; the emitted ``_version`` (0x2601) is accepted
by every backend from 1.8 to 2.x.
"""

from __future__ import annotations

import os

from ansible_collections.pycontainer.engine.plugins.module_utils.linux._cffi_gen import emit

CDEF = """
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
"""


def build(out_dir: str | None = None) -> str:
    return emit(CDEF, "_libc_ffi", out_dir or os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    print(build())
