// The CPU emulation of a tile (tile.h): the lanes run in lock-step, each lane value an array
// entry and each collective step a loop over the lanes in the order the CUDA tile computes it
// (tile_cuda.cuh). Test-only: the CPU drivers route through it when the emulation is switched on
// (set_tile_emulation, fastfield/_backend.py's cpu_tile_emulation), so that the CPU tests run
// the GPU kernels' scans, carries and index guards.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "tile.h"

namespace fastfield {
namespace cpu {

// The emulated tile width, 0 when the CPU kernels run their production code. Returns the
// previous width; anything but 0 or a width of tile::kEmulated is a ValueError.
int64_t set_tile_emulation(int64_t width);
int64_t tile_emulation_width();

// Runs fn() out of line: the CPU drivers call the emulation through this, so that its code does
// not change how the compiler inlines their production path (it did: GCC stopped inlining the
// density backward's block loop once the emulated tiles sat beside it).
template <typename Fn>
__attribute__((noinline)) void run_emulated(const Fn& fn) {
  fn();
}

template <typename T, int W>
struct LaneArray {
  T value[W];
  T& operator[](int lane) { return value[lane]; }
  const T& operator[](int lane) const { return value[lane]; }
};

template <int W>
struct CpuTile {
  static_assert(W >= 1 && W <= 32 && (W & (W - 1)) == 0, "tile widths are powers of two <= 32");
  static constexpr int kWidth = W;
  template <typename T>
  using Lanes = LaneArray<T, W>;

  template <typename Fn>
  auto map(const Fn& fn) const -> Lanes<decltype(fn(0))> {
    Lanes<decltype(fn(0))> out;
    for (int l = 0; l < W; ++l) out[l] = fn(l);
    return out;
  }

  template <typename Fn>
  void each(const Fn& fn) const {
    for (int l = 0; l < W; ++l) fn(l);
  }

  template <typename Fn>
  void leader(const Fn& fn) const {
    fn();
  }

  template <typename Fn>
  auto leader_value(const Fn& fn) const -> decltype(fn()) {
    return fn();
  }

  template <typename T>
  T broadcast(const Lanes<T>& x, int src) const {
    return x[src];
  }

  template <typename T>
  Lanes<T> shuffle(const Lanes<T>& x, const Lanes<int>& src) const {
    Lanes<T> out;
    for (int l = 0; l < W; ++l) out[l] = x[src[l] & (W - 1)];  // CUDA's srcLane % width
    return out;
  }

  template <typename T>
  Lanes<T> shift_up(const Lanes<T>& x, int d, const T& fill) const {
    Lanes<T> out;
    for (int l = 0; l < W; ++l) out[l] = l >= d ? x[l - d] : fill;
    return out;
  }

  template <typename T>
  Lanes<T> shift_down(const Lanes<T>& x, int d, const T& fill) const {
    Lanes<T> out;
    for (int l = 0; l < W; ++l) out[l] = l + d < W ? x[l + d] : fill;
    return out;
  }

  template <typename T, typename Op>
  Lanes<T> inclusive_scan(Lanes<T> x, const Op& op) const {
    for (int d = 1; d < W; d *= 2) {
      const Lanes<T> before = x;
      for (int l = d; l < W; ++l) x[l] = op(before[l - d], before[l]);
    }
    return x;
  }

  template <typename T, typename Op>
  Lanes<T> reverse_inclusive_scan(Lanes<T> x, const Op& op) const {
    for (int d = 1; d < W; d *= 2) {
      const Lanes<T> before = x;
      for (int l = 0; l + d < W; ++l) x[l] = op(before[l], before[l + d]);
    }
    return x;
  }

  template <typename T, typename Op>
  T reduce(Lanes<T> x, const Op& op) const {
    for (int d = W / 2; d >= 1; d /= 2) {
      const Lanes<T> before = x;
      for (int l = 0; l < W; ++l) x[l] = op(before[l], before[l ^ d]);
    }
    return x[0];
  }

  int count(const Lanes<bool>& pred) const {
    int n = 0;
    for (int l = 0; l < W; ++l) n += pred[l] ? 1 : 0;
    return n;
  }

  bool any(const Lanes<bool>& pred) const { return count(pred) > 0; }

  void sync() const {}
};

}  // namespace cpu

// The CUDA launcher's structure on the CPU, for the emulation: for_each_tile runs fn(tile, item)
// for every item in [0, n) with the emulation's width, whatever the item size; for_each runs
// fn(item) per item as CUDA's one thread per item does. Items run one after the other
// (deterministic even for the overlapping rays of unchecked invalid offsets; speed is not the
// point). Mirrors CudaLauncher.
struct CpuTileLauncher {
  template <typename Fn>
  static void for_each(const at::Tensor& /*device_of*/, int64_t n, int64_t /*grain*/,
                       const Fn& fn) {
    for (int64_t item = 0; item < n; ++item) fn(item);
  }

  template <typename Fn>
  static void for_each_tile(const at::Tensor& /*device_of*/, int64_t n,
                            int64_t /*samples_per_item*/, const Fn& fn) {
    switch (cpu::tile_emulation_width()) {
      case 1:
        run<1>(n, fn);
        break;
      case tile::kNarrow:
        run<tile::kNarrow>(n, fn);
        break;
      default:
        run<tile::kWide>(n, fn);
        break;
    }
  }

 private:
  template <int W, typename Fn>
  static void run(int64_t n, const Fn& fn) {
    const cpu::CpuTile<W> tile;
    for (int64_t item = 0; item < n; ++item) fn(tile, item);
  }
};

}  // namespace fastfield
