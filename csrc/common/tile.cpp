#include "tile.h"

#include <c10/util/Exception.h>

#include <atomic>

namespace fastfield {
namespace tile {
namespace {

std::atomic<int>& forced_flag() {
  static std::atomic<int> width{0};
  return width;
}

}  // namespace

int64_t set_forced_width(int64_t width) {
  TORCH_CHECK_VALUE(width == 0 || width == kNarrow || width == kWide,
                    "the CUDA tile width must be 0 (chosen per call), ", kNarrow, " or ", kWide,
                    ", got ", width);
  return forced_flag().exchange(static_cast<int>(width));
}

int forced_width() { return forced_flag().load(std::memory_order_relaxed); }

}  // namespace tile
}  // namespace fastfield
