// CUDA kernels of the pdf family: the drivers of pdf_host.h on the CUDA launcher (one thread per
// ray; neus_upsample computes its section alphas on the spot).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "pdf_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("sample_pdf", &fastfield::sample_pdf_driver<CudaLauncher>);
  m.impl("merge_sorted", &fastfield::merge_sorted_driver<CudaLauncher>);
  m.impl("neus_upsample", &fastfield::neus_upsample_driver<CudaLauncher>);
}
