// Host-side half of the stratified_samples drivers, shared by stratified_cpu.cpp and
// stratified_cuda.cu: argument checks, contiguous copies, output allocation and the raw-pointer
// view that stratified.h consumes.
#pragma once

#include <ATen/core/Tensor.h>
#include <optional>

#include <cstdint>

#include "stratified.h"

namespace fastfield {

// Checked, contiguous inputs of one stratified_samples call.
struct StratifiedCall {
  at::Tensor near, far;  // [n_rays]
  at::Tensor u;          // [n_rays, n_samples], [n_rays] or undefined (jitter none)
  int64_t n_rays = 0;
  int64_t n_samples = 0;
  bool lindisp = false;
  Jitter jitter = Jitter::kNone;
};

StratifiedCall prepare_stratified(const at::Tensor& near, const at::Tensor& far,
                                  const std::optional<at::Tensor>& u, int64_t n_samples,
                                  bool lindisp, int64_t jitter);

// t [n_rays, n_samples] like near.
at::Tensor allocate_stratified(const StratifiedCall& call);

template <typename scalar_t>
StratifiedInputs<scalar_t> stratified_inputs(const StratifiedCall& call) {
  return {call.n_rays,
          call.n_samples,
          call.near.data_ptr<scalar_t>(),
          call.far.data_ptr<scalar_t>(),
          call.u.defined() ? call.u.data_ptr<scalar_t>() : nullptr,
          call.lindisp,
          call.jitter};
}

}  // namespace fastfield
