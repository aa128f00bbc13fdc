"""Generate ``_nft_ffi.py``: the cffi declarations of libnftables (Debian: libnftables1) the engine calls.

Out-of-line ABI mode, as ``linux/_libc_build.py``: nothing compiled, the generated module holds the
pre-parsed type table. Regenerate after editing the cdef (the output is committed):

    .venv/bin/python plugins/module_utils/network/_nft_build.py
"""

from __future__ import annotations

import os

from ansible_collections.pycontainer.engine.plugins.module_utils.linux._cffi_gen import emit

CDEF = """
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


def build(out_dir: str | None = None) -> str:
    return emit(CDEF, "_nft_ffi", out_dir or os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    print(build())
