"""The lowest layer: torch-only pieces every other layer may use -- result types (types.py),
random and deterministic quantiles (random.py), the kernels' enumerations (enums.py, read from
csrc/common/enums.def), argument checks (checks.py), the memory budget of chunked work
(memory.py), the uint8 rounding rule (images.py), atomic file writes (atomic.py) and where the
kernel sources are (sources.py). It imports nothing else of fastfield."""
