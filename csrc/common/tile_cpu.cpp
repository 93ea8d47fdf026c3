#include "tile_cpu.h"

#include <c10/util/Exception.h>

#include <atomic>

namespace fastfield {
namespace cpu {
namespace {

std::atomic<int64_t>& emulation_flag() {
  static std::atomic<int64_t> width{0};
  return width;
}

}  // namespace

int64_t set_tile_emulation(int64_t width) {
  bool known = width == 0;
  for (int w : tile::kEmulated) known = known || width == w;
  TORCH_CHECK_VALUE(known, "the CPU tile emulation width must be 0 (off), 1, ", tile::kNarrow,
                    " or ", tile::kWide, ", got ", width);
  return emulation_flag().exchange(width);
}

int64_t tile_emulation_width() { return emulation_flag().load(); }

}  // namespace cpu
}  // namespace fastfield
