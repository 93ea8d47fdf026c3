// CUDA kernel of stratified_samples: the driver of stratified_host.h on the CUDA launcher (one
// thread per sample).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "stratified_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  m.impl("stratified_samples", &fastfield::stratified_samples_driver<fastfield::CudaLauncher>);
}
