"""Optional CUDA count kernel: a dense GEMM on the right-hand slice of the promoter matrix.

Used by :func:`anime_recs.similarity.jaccard.pair_jaccard` when torch sees a CUDA device.
Per block ``[lo, hi)`` the slice ``A[:, lo:]`` is densified once on the device (``bf16``:
0/1 are exact) and each sub-chunk's counts are ``A[:, s0:s1]^T @ A[:, lo:]`` with ``fp32``
output (``torch.mm(..., out_dtype=torch.float32)``: products of 0/1 are exact and fp32
accumulation is exact for counts below ``2^24``; the largest possible count is the number of
users, 310k at full scale). The result is identical to the scipy kernel; only the counts are
computed differently, the filtering and Jaccard conversion are shared.

On CPU (tests) the same code runs in float32, which is exact for the same reason.
"""

from __future__ import annotations

import logging

import numpy as np

from anime_recs.similarity.matrix import PromoterMatrix

log = logging.getLogger(__name__)

EXACT_LIMIT = 1 << 24  # fp32 represents every integer below this exactly
DEVICE_MEMORY_SHARE = 0.25  # at most this share of free device memory for one dense slice


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a project dependency
        return False
    return bool(torch.cuda.is_available())


def torch_counter(matrix: PromoterMatrix, lo: int, device: str = "cuda"):
    """A count function ``counts(s0, s1) -> int32 ndarray`` backed by a torch GEMM.

    Returns None (caller falls back to scipy) when the dense slice would not fit in the
    device memory budget or the counts could exceed the exact range.
    """
    import torch

    if matrix.n_users >= EXACT_LIMIT:
        return None
    dev = torch.device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    width = matrix.n_titles - lo
    need = matrix.n_users * width * (2 if dtype == torch.bfloat16 else 4)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        if need > DEVICE_MEMORY_SHARE * free:
            log.warning("dense slice %s bytes exceeds the device budget: using scipy", need)
            return None
    right = matrix.right(lo)
    rows = np.repeat(np.arange(matrix.n_users, dtype=np.int64), np.diff(right.indptr))
    dense = torch.zeros((matrix.n_users, width), dtype=dtype, device=dev)
    dense[
        torch.from_numpy(rows).to(dev), torch.from_numpy(right.indices.astype(np.int64)).to(dev)
    ] = 1

    def counts(s0: int, s1: int) -> np.ndarray:
        left = dense[:, s0 - lo : s1 - lo].T
        if dev.type == "cuda":
            out = torch.mm(left, dense, out_dtype=torch.float32)
        else:
            out = torch.mm(left, dense)
        return out.to(torch.int32).cpu().numpy()

    return counts
