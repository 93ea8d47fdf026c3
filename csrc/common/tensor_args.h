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

}  // namespace fastfield
