// CUDA kernels of hash_encode: the drivers of hash_encode_host.h on the CUDA launcher. The
// table gradients take one thread per (point, level), in the item order of hash_encode.h (a
// warp = 32 consecutive points of one level), accumulated with atomicAdd: their summation order,
// and so their last bits, vary between runs (the CPU's are fixed). Packed float2 / half2 atomics
// for F = 2 are a possible later optimisation (tiny-cuda-nn uses them).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "hash_encode_host.h"

namespace fastfield {
namespace {

struct AtomicAdd {
  template <typename scalar_t>
  FF_HOST_DEVICE FF_INLINE void operator()(scalar_t* target, scalar_t value) const {
#if defined(__CUDA_ARCH__)
    atomicAdd(target, value);
#else
    *target += value;  // never runs: the lambdas below execute on the device only
#endif
  }
};

}  // namespace

template <>
struct HashTableScatter<CudaLauncher> {
  template <typename scalar_t, typename Coefficients>
  static void scatter(at::Tensor& params_grad, const HashScatter<scalar_t>& a,
                      const Coefficients& coefficients) {
    params_grad.zero_();
    HashItems<CudaLauncher>::for_each(
        params_grad, a.grid, a.x, a.params_grad,
        [=] FF_HOST_DEVICE(int64_t point, int level, const HashCell<scalar_t>& cell) {
          hash_scatter_item(a, coefficients, AtomicAdd{}, cell, point, level);
        });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("hash_encode_fwd", &fastfield::hash_encode_fwd_driver<CudaLauncher>);
  m.impl("hash_encode_bwd", &fastfield::hash_encode_bwd_driver<CudaLauncher>);
  m.impl("hash_encode_bwd_bwd", &fastfield::hash_encode_bwd_bwd_driver<CudaLauncher>);
}
