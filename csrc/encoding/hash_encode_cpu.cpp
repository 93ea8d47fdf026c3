// CPU kernels of hash_encode: the drivers of hash_encode_host.h on the CPU launcher, with the
// table gradients accumulated one level per task. A level owns a disjoint slice of the table,
// so its task is the slice's only writer: it zeroes the slice (in cache, in parallel with the
// other levels) and adds every point's corners in point order. The result is bitwise the same
// for any number of threads, needs no atomics and no per-thread copy of the table (16 x 2^19 x 2
// floats is 64 MiB per copy).
#include <torch/library.h>

#include <algorithm>

#include "../common/cpu_launch.h"
#include "hash_encode_host.h"

namespace fastfield {
namespace {

struct PlainAdd {
  template <typename scalar_t>
  void operator()(scalar_t* target, scalar_t value) const {
    *target += value;
  }
};

// The level of task `task` out of n: 0, n-1, 1, n-2, ... so that the contiguous task ranges of
// at::parallel_for mix coarse levels (dense, cache-resident) with fine ones (hashed, a random
// access per corner).
inline int level_of_task(int64_t task, int64_t n_levels) {
  return static_cast<int>(task % 2 == 0 ? task / 2 : n_levels - 1 - task / 2);
}

}  // namespace

template <>
struct HashTableScatter<CpuLauncher> {
  template <typename scalar_t, typename Coefficients>
  static void scatter(at::Tensor& /*params_grad*/, const HashScatter<scalar_t>& a,
                      const Coefficients& coefficients) {
    const HashGrid<scalar_t>& g = a.grid;
    const int64_t slice = g.table_size * g.n_features;
    cpu::parallel_for(0, g.n_levels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int level = level_of_task(task, g.n_levels);
        scalar_t* table = a.params_grad + g.entry(level, 0);
        std::fill(table, table + slice, scalar_t(0));
        cpu::apply(0, g.n_points, [&](int64_t point) {
          hash_scatter_item(a, coefficients, PlainAdd{}, point, level);
        });
      }
    });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("hash_encode_fwd", &fastfield::hash_encode_fwd_driver<CpuLauncher>);
  m.impl("hash_encode_bwd", &fastfield::hash_encode_bwd_driver<CpuLauncher>);
  m.impl("hash_encode_bwd_bwd", &fastfield::hash_encode_bwd_bwd_driver<CpuLauncher>);
}
