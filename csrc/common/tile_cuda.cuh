// The CUDA tile (tile.h): kWidth consecutive threads of one warp, each the lane whose index is
// its position in the tile. Collectives are warp shuffles restricted to the tile's lanes (mask
// and width), so that the tiles of one warp may run different numbers of chunks. .cu files only.
#pragma once

#include <cstdint>
#include <cstring>

#include "tile.h"

namespace fastfield {
namespace cuda {

// One lane's value: the thread's own register; the lane index is implied.
template <typename T>
struct OneLane {
  T value;
  __device__ __forceinline__ T& operator[](int) { return value; }
  __device__ __forceinline__ const T& operator[](int) const { return value; }
};

// A shuffle of any trivially copyable T, one 32-bit word at a time (float, double, int64 and
// small structs such as compositing.h's affine maps).
template <typename T, typename Shuffle>
__device__ __forceinline__ T shuffle_words(const T& x, const Shuffle& shuffle_word) {
  static_assert(sizeof(T) % sizeof(int) == 0, "shuffled types are whole 32-bit words");
  constexpr int kWords = sizeof(T) / sizeof(int);
  int words[kWords];
  memcpy(words, &x, sizeof(T));
#pragma unroll
  for (int k = 0; k < kWords; ++k) words[k] = shuffle_word(words[k]);
  T out;
  memcpy(&out, words, sizeof(T));
  return out;
}

template <int W>
struct WarpTile {
  static_assert(W >= 1 && W <= 32 && (W & (W - 1)) == 0, "tile widths are powers of two <= 32");
  static constexpr int kWidth = W;
  template <typename T>
  using Lanes = OneLane<T>;

  int lane;       // position in the tile
  unsigned mask;  // the tile's lanes in the warp

  // Tiles are aligned groups of W threads of a 1-D block whose size is a multiple of 32.
  __device__ __forceinline__ WarpTile()
      : lane(static_cast<int>(threadIdx.x) & (W - 1)),
        mask(W == 32 ? 0xffffffffu
                     : (((1u << W) - 1u) << ((static_cast<int>(threadIdx.x) & 31) & ~(W - 1)))) {}

  template <typename Fn>
  __device__ __forceinline__ auto map(const Fn& fn) const -> Lanes<decltype(fn(0))> {
    return {fn(lane)};
  }

  template <typename Fn>
  __device__ __forceinline__ void each(const Fn& fn) const {
    fn(lane);
  }

  template <typename Fn>
  __device__ __forceinline__ void leader(const Fn& fn) const {
    if (lane == 0) fn();
  }

  template <typename Fn>
  __device__ __forceinline__ auto leader_value(const Fn& fn) const -> decltype(fn()) {
    decltype(fn()) value{};
    if (lane == 0) value = fn();
    return shfl(value, 0);
  }

  template <typename T>
  __device__ __forceinline__ T broadcast(const Lanes<T>& x, int src) const {
    return shfl(x.value, src);
  }

  template <typename T>
  __device__ __forceinline__ Lanes<T> shuffle(const Lanes<T>& x, const Lanes<int>& src) const {
    return {shfl(x.value, src.value)};
  }

  template <typename T>
  __device__ __forceinline__ Lanes<T> shift_up(const Lanes<T>& x, int d, const T& fill) const {
    const T moved = shuffle_words(
        x.value, [&](int word) { return __shfl_up_sync(mask, word, d, W); });
    return {lane >= d ? moved : fill};
  }

  template <typename T>
  __device__ __forceinline__ Lanes<T> shift_down(const Lanes<T>& x, int d, const T& fill) const {
    const T moved = shuffle_words(
        x.value, [&](int word) { return __shfl_down_sync(mask, word, d, W); });
    return {lane + d < W ? moved : fill};
  }

  template <typename T, typename Op>
  __device__ __forceinline__ Lanes<T> inclusive_scan(Lanes<T> x, const Op& op) const {
#pragma unroll
    for (int d = 1; d < W; d *= 2) {
      const T earlier = shift_up(x, d, x.value).value;
      if (lane >= d) x.value = op(earlier, x.value);
    }
    return x;
  }

  template <typename T, typename Op>
  __device__ __forceinline__ Lanes<T> reverse_inclusive_scan(Lanes<T> x, const Op& op) const {
#pragma unroll
    for (int d = 1; d < W; d *= 2) {
      const T later = shift_down(x, d, x.value).value;
      if (lane + d < W) x.value = op(x.value, later);
    }
    return x;
  }

  template <typename T, typename Op>
  __device__ __forceinline__ T reduce(Lanes<T> x, const Op& op) const {
#pragma unroll
    for (int d = W / 2; d >= 1; d /= 2) {
      const T other = shuffle_words(
          x.value, [&](int word) { return __shfl_xor_sync(mask, word, d, W); });
      x.value = op(x.value, other);
    }
    return x.value;
  }

  __device__ __forceinline__ int count(const Lanes<bool>& pred) const {
    return __popc(__ballot_sync(mask, pred.value) & mask);
  }

  __device__ __forceinline__ bool any(const Lanes<bool>& pred) const {
    return (__ballot_sync(mask, pred.value) & mask) != 0u;
  }

  __device__ __forceinline__ void sync() const { __syncwarp(mask); }

 private:
  template <typename T>
  __device__ __forceinline__ T shfl(const T& x, int src) const {
    return shuffle_words(x, [&](int word) { return __shfl_sync(mask, word, src, W); });
  }
};

}  // namespace cuda
}  // namespace fastfield
