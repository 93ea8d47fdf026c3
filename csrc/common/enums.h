// The enum classes of the int64 enumeration arguments, generated from csrc/common/enums.def
// (the table fastfield/core/enums.py reads too), and what the host checks need of them.
#pragma once

#include <cstdint>

#include "enums.def"

namespace fastfield {

#define FF_ENUMERATOR(name, value, python) name = value,
#define FF_ENUM_MATCHES(name, value, python) || v == value
#define FF_ENUM_CHOICE(name, value, python) " " #value " (" #python ")"

// enum class Type : int64_t {...}; is_enum_value(Type{}, v): v is one of its values;
// enum_choices(Type{}): " 0 (opengl) 1 (opencv)" for error messages. Host-side helpers.
#define FF_DEFINE_ENUM(Type)                                        \
  enum class Type : int64_t { FF_ENUM_##Type(FF_ENUMERATOR) };      \
  constexpr bool is_enum_value(Type, int64_t v) {                   \
    return false FF_ENUM_##Type(FF_ENUM_MATCHES);                   \
  }                                                                 \
  constexpr const char* enum_choices(Type) {                        \
    return FF_ENUM_##Type(FF_ENUM_CHOICE);                          \
  }

FF_DEFINE_ENUM(CameraConvention)
FF_DEFINE_ENUM(SphereBounds)
FF_DEFINE_ENUM(Jitter)

#undef FF_DEFINE_ENUM
#undef FF_ENUM_CHOICE
#undef FF_ENUM_MATCHES
#undef FF_ENUMERATOR

}  // namespace fastfield
