// CUDA kernels of frequency_encode: the drivers of frequency_encode_host.h on the CUDA launcher,
// with the items of frequency_encode.h (one thread per output element for the [n, width]
// outputs, per (point, coordinate) for the [n, d] gradients).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "frequency_encode_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("frequency_encode_fwd", &fastfield::frequency_encode_fwd_driver<CudaLauncher>);
  m.impl("frequency_encode_bwd", &fastfield::frequency_encode_bwd_driver<CudaLauncher>);
  m.impl("frequency_encode_bwd_bwd", &fastfield::frequency_encode_bwd_bwd_driver<CudaLauncher>);
}
