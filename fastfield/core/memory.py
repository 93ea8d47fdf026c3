"""How much memory a chunked computation (an image render, an SDF grid) may use at once."""
import os

import torch


def memory_budget(device: torch.device) -> int:
    """Bytes a render may use: 60% of the free memory on a GPU; on a CPU a quarter of the
    available RAM, at most 2 GiB (larger chunks are not faster there)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return int(min(available // 4, 2 << 30))
