// Optional tensor arguments of the host drivers: contiguous copies and raw data pointers where
// "absent" (std::nullopt, an undefined tensor or an empty placeholder) maps to undefined/nullptr.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace fastfield {

inline at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->contiguous() : at::Tensor();
}

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

// Whether the packed per-sample outputs of a compositing op start as zeros. The samples that no
// ray owns (possible only with unchecked invalid offsets) must read as zero; kernels that fill
// them themselves (kernels_fill_unowned: the tiles, compositing.h's zero_unowned) spare that
// memset, unless there is no ray to launch a tile for.
inline bool zero_initialised(const at::Tensor& ray_offsets, bool kernels_fill_unowned) {
  return ray_offsets.defined() && (!kernels_fill_unowned || ray_offsets.size(0) <= 1);
}

}  // namespace fastfield
