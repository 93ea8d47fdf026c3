// Tiles: the cooperative structure of the kernels that scan along rays, written once against a
// small interface with two implementations -- CUDA warp intrinsics (tile_cuda.cuh: the lanes
// are threads of one warp) and a CPU emulation that runs the lanes in lock-step (tile_cpu.h:
// each lane value is an array entry, each step a loop over the lanes). The CPU tests run the
// GPU's scans, carries and index guards through the emulation (fastfield/_backend.py,
// cpu_tile_emulation) and compare them with the production CPU kernels and the reference.
//
// A tile of kWidth lanes works on one item (a ray). Code over a tile is written SIMT-style:
// every lane's work is a lambda of the lane index l, and lane values are `Lanes<T>` indexed by
// l (on CUDA one register, the thread's own; in the emulation an array):
//
//   Tile::kWidth                            lanes per tile (compile time)
//   tile.map(fn) -> Lanes<T>                fn(l) in every lane
//   tile.each(fn)                           fn(l) in every lane, for effects (stores)
//   tile.leader(fn)                         fn() in lane 0 only
//   tile.leader_value(fn) -> T              fn() in lane 0, broadcast to every lane
//   tile.broadcast(x, src) -> T             x[src] in every lane
//   tile.shuffle(x, src) -> Lanes<T>        lane l gets x[src[l]] (src[l] in [0, kWidth))
//   tile.shift_up(x, d, fill)               lane l gets x[l - d], lanes l < d get fill
//   tile.shift_down(x, d, fill)             lane l gets x[l + d], lanes l + d >= kWidth fill
//   tile.inclusive_scan(x, op)              lane l gets x[0] op ... op x[l]
//   tile.reverse_inclusive_scan(x, op)      lane l gets x[l] op ... op x[kWidth - 1]
//   tile.reduce(x, op) -> T                 x[0] op ... op x[kWidth - 1], for commutative op
//   tile.count(pred) -> int, tile.any(pred) over Lanes<bool>
//   tile.sync()                             memory written by one lane is visible to all
//
// op(earlier, later) combines two adjacent runs of lanes; scans need it associative, not
// commutative (the affine maps of compositing.h's backward are not). Both implementations run
// the same steps in the same order, so a scan rounds identically on both:
//   scans: Hillis-Steele, log2(kWidth) steps; step d combines lane l with lane l -/+ d;
//   reduce: a butterfly, log2(kWidth) steps; step d combines lane l with lane l ^ d (for a
//           commutative op every lane ends with the same bits).
// Control flow that encloses a collective operation must be the same in every lane of a tile
// (loops over a ray's chunks depend on the ray only); per-lane conditions go inside map/each.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace fastfield {
namespace tile {

// Tile widths: the one place they are chosen. The CUDA drivers run kWide lanes per ray when
// the rays hold at least kWideMinSamples samples (or bins) on average, else kNarrow, so that
// short rays (the packed layout of occupancy-grid marching) leave few lanes idle. The CPU
// emulation runs any of kEmulated (1 makes every scan trivial: the chunked walk alone).
constexpr int kWide = 32;
constexpr int kNarrow = 8;
constexpr int64_t kWideMinSamples = 48;
constexpr int kEmulated[] = {1, kNarrow, kWide};

// Threads per block of the tile kernels (a multiple of every width).
constexpr int kThreadsPerBlock = 256;

// A width the CUDA kernels use whatever the items (kNarrow or kWide), or 0 for width_for's
// choice: for benchmarks that measure both (benchmarks/bandwidth.py). Returns the previous one;
// anything else is a ValueError. (tile.cpp; fastfield/_backend.py's set_cuda_tile_width)
int64_t set_forced_width(int64_t width);
int forced_width();

// The tile width for items of `samples_per_item` samples on average (or the forced one).
inline int width_for(int64_t samples_per_item) {
  const int forced = forced_width();
  if (forced != 0) return forced;
  return samples_per_item >= kWideMinSamples ? kWide : kNarrow;
}

// Scan and reduce operators, op(earlier, later).
struct Add {
  template <typename T>
  FF_HOST_DEVICE FF_INLINE T operator()(const T& earlier, const T& later) const {
    return earlier + later;
  }
};

struct Multiply {
  template <typename T>
  FF_HOST_DEVICE FF_INLINE T operator()(const T& earlier, const T& later) const {
    return earlier * later;
  }
};

// An exclusive scan from the inclusive one: lane l gets x[0] op ... op x[l - 1], lane 0 the
// identity.
template <class Tile, typename T, typename Op>
FF_HOST_DEVICE FF_INLINE typename Tile::template Lanes<T> exclusive_scan(
    const Tile& t, const typename Tile::template Lanes<T>& x, const Op& op, const T& identity) {
  return t.shift_up(t.inclusive_scan(x, op), 1, identity);
}

// fn(i) for every i in [begin, end), kWidth consecutive indices at a time.
template <class Tile, typename Fn>
FF_HOST_DEVICE FF_INLINE void for_each_index(const Tile& t, int64_t begin, int64_t end,
                                             const Fn& fn) {
  for (int64_t first = begin; first < end; first += Tile::kWidth) {
    t.each([&](int l) {
      if (first + l < end) fn(first + l);
    });
  }
}

// For each lane's key, how many of the window's first n_valid lanes hold a value w with
// before(w, key) -- a binary search over the lanes by shuffles (log2(kWidth) + 1 steps), so
// before(window[m], key) must be true for a prefix of m and false after it (an ascending
// window, with `before` a strict or non-strict "comes before").
template <class Tile, typename Values, typename Before>
FF_HOST_DEVICE FF_INLINE typename Tile::template Lanes<int> count_before(const Tile& t,
                                                                         const Values& window,
                                                                         int n_valid,
                                                                         const Values& key,
                                                                         const Before& before) {
  auto count = t.map([](int) { return 0; });
  for (int step = Tile::kWidth / 2; step >= 1; step /= 2) {
    const auto probe = t.map([&](int l) { return count[l] + step - 1; });
    const auto value = t.shuffle(window, probe);
    t.each([&](int l) {
      if (probe[l] < n_valid && before(value[l], key[l])) count[l] += step;
    });
  }
  const auto value = t.shuffle(window, count);  // count <= kWidth - 1 here
  t.each([&](int l) {
    if (count[l] < n_valid && before(value[l], key[l])) count[l] += 1;
  });
  return count;
}

}  // namespace tile
}  // namespace fastfield
