// CPU kernels of hash_encode: the drivers of hash_encode_host.h on the CPU launcher.
//
// The (point, level) passes walk each level's points in order, computing a point's cell a few
// points ahead and prefetching the table rows it will touch: the 8 rows of a fine level are
// random lines of a table larger than the caches, and the out-of-order window alone does not
// keep enough of those misses in flight.
//
// The table gradients accumulate one level per task. A level owns a disjoint slice of the
// table, so its task is the slice's only writer: it zeroes the slice (in cache, in parallel with
// the other levels) and adds every point's corners in point order. The result is bitwise the
// same for any number of threads, needs no atomics and no per-thread copy of the table
// (16 x 2^19 x 2 floats is 64 MiB per copy).
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

// A hint that keeps its place in the code: GCC 12 deletes __builtin_prefetch (and
// _mm_prefetch) inside these inlined, fully unrolled loops as dead code.
inline void prefetch_line(const void* address) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
#else
  __builtin_prefetch(address);
#endif
}

// How many points ahead a cell is computed and its rows prefetched (a power of two).
constexpr int64_t kPrefetchPoints = 8;

// fn(point, level, cell) for the points [first, last) of one level, in order; the rows of
// `table` and `second_table` (if not null) are prefetched.
template <typename scalar_t, typename Fn>
void for_each_point_of_level(const HashGrid<scalar_t>& g, const scalar_t* x,
                             const scalar_t* table, const scalar_t* second_table, int level,
                             int64_t first, int64_t last, const Fn& fn) {
  const HashLevel<scalar_t>& geometry = g.levels[level];
  const int64_t level_first = g.entry(level, 0);
  HashCell<scalar_t> ahead[kPrefetchPoints];
  auto load = [&](int64_t point) {
    HashCell<scalar_t>& cell = ahead[(point - first) & (kPrefetchPoints - 1)];
    cell = hash_cell(x + 3 * point, geometry, g.row_mask);
    for (int k = 0; k < 8; ++k) {
      const int64_t row = level_first + static_cast<int64_t>(cell.row[k]) * g.n_features;
      prefetch_line(table + row);
      if (second_table != nullptr) prefetch_line(second_table + row);
    }
  };
  for (int64_t point = first; point < std::min(first + kPrefetchPoints, last); ++point) {
    load(point);
  }
  for (int64_t point = first; point < last; ++point) {
    const HashCell<scalar_t> cell = ahead[(point - first) & (kPrefetchPoints - 1)];
    if (point + kPrefetchPoints < last) load(point + kPrefetchPoints);
    fn(point, level, cell);
  }
}

// The level of task `task` out of n: 0, n-1, 1, n-2, ... so that the contiguous task ranges of
// at::parallel_for mix coarse levels (dense, cache-resident) with fine ones (hashed, a random
// access per corner).
inline int level_of_task(int64_t task, int64_t n_levels) {
  return static_cast<int>(task % 2 == 0 ? task / 2 : n_levels - 1 - task / 2);
}

}  // namespace

template <>
struct HashItems<CpuLauncher> {
  template <typename scalar_t, typename Fn>
  static void for_each(const at::Tensor& /*device_of*/, const HashGrid<scalar_t>& g,
                       const scalar_t* x, const scalar_t* table, const Fn& fn) {
    const int64_t n_groups = (g.n_points + kHashGroupPoints - 1) / kHashGroupPoints;
    cpu::parallel_for(0, n_groups, 4, [&](int64_t begin, int64_t end) {
      cpu::apply(begin, end, [&](int64_t group) {
        const int64_t first = group * kHashGroupPoints;
        const int64_t last = std::min(first + kHashGroupPoints, g.n_points);
        for (int level = 0; level < g.n_levels; ++level) {
          for_each_point_of_level(g, x, table, static_cast<const scalar_t*>(nullptr), level,
                                  first, last, fn);
        }
      });
    });
  }
};

template <>
struct HashPointSums<CpuLauncher> {
  template <typename scalar_t, typename Fn>
  static void for_each(const at::Tensor& /*device_of*/, const HashGrid<scalar_t>& g,
                       const scalar_t* x, const scalar_t* table, const scalar_t* second_table,
                       scalar_t* x_grad, const Fn& fn) {
    const int64_t n_groups = (g.n_points + kHashGroupPoints - 1) / kHashGroupPoints;
    cpu::parallel_for(0, n_groups, 4, [&](int64_t begin, int64_t end) {
      cpu::apply(begin, end, [&](int64_t group) {
        const int64_t first = group * kHashGroupPoints;
        const int64_t last = std::min(first + kHashGroupPoints, g.n_points);
        scalar_t sums[kHashGroupPoints][3] = {};
        for (int level = 0; level < g.n_levels; ++level) {
          for_each_point_of_level(g, x, table, second_table, level, first, last,
                                  [&](int64_t point, int, const HashCell<scalar_t>& cell) {
                                    fn(point, level, cell, sums[point - first]);
                                  });
        }
        for (int64_t point = first; point < last; ++point) {
          store_point_sum(x_grad, point, sums[point - first]);
        }
      });
    });
  }
};

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
        for_each_point_of_level(g, a.x, a.params_grad, static_cast<const scalar_t*>(nullptr),
                                level, 0, g.n_points,
                                [&](int64_t point, int, const HashCell<scalar_t>& cell) {
                                  hash_scatter_item(a, coefficients, PlainAdd{}, cell, point,
                                                    level);
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
