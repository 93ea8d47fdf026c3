// Host drivers of frequency_encode (CPU and CUDA), written against a Launcher (launch.h): checks,
// allocation and dtype dispatch once; the passes come from FrequencyPasses<Launcher>. Its general
// form launches the items of frequency_encode.h (the CUDA kernels); frequency_encode_cpu.cpp
// specialises it for the CPU (vectorised sin/cos tables per block of points).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "frequency_encode.h"

namespace fastfield {

// Checked, contiguous x of one frequency_encode call and its layout.
struct FrequencyEncodeCall {
  at::Tensor x;
  FrequencyLayout layout;
};

// x [n, d] float32/float64 with d >= 1, 0 <= n_frequencies <= kMaxFrequencies, and a row width
// d (1 + 2 n_frequencies) below 2^31.
FrequencyEncodeCall prepare_frequency_encode(const char* op, const at::Tensor& x,
                                             int64_t n_frequencies);

// A gradient argument named `name` shaped [n, columns] (`pattern` in the error), dtype and
// device of x; contiguous.
at::Tensor checked_frequency_gradient(const char* op, const at::Tensor& t, const char* name,
                                      const FrequencyEncodeCall& call, int64_t columns,
                                      const char* pattern);

// The items of frequency_encode.h, one per thread of Launcher.
template <class Launcher>
struct FrequencyItems {
  template <typename scalar_t>
  static void forward(const at::Tensor& device_of, const FrequencyForward<scalar_t>& a) {
    Launcher::for_each(device_of, a.layout.n_points * a.layout.width(), 1,
                       [=] FF_HOST_DEVICE(int64_t e) { frequency_forward_item(a, e); });
  }

  template <typename scalar_t>
  static void backward(const at::Tensor& device_of, const FrequencyBackward<scalar_t>& a) {
    Launcher::for_each(device_of, a.layout.n_points * a.layout.dim, 1,
                       [=] FF_HOST_DEVICE(int64_t e) { frequency_backward_item(a, e); });
  }

  // dL/dG where a.grad_out_grad is set, dL/dx where a.x_grad is.
  template <typename scalar_t>
  static void second_order(const at::Tensor& device_of, const FrequencySecondOrder<scalar_t>& a) {
    if (a.grad_out_grad != nullptr) {
      Launcher::for_each(device_of, a.layout.n_points * a.layout.width(), 1,
                         [=] FF_HOST_DEVICE(int64_t e) { frequency_grad_out_grad_item(a, e); });
    }
    if (a.x_grad != nullptr) {
      Launcher::for_each(device_of, a.layout.n_points * a.layout.dim, 1,
                         [=] FF_HOST_DEVICE(int64_t e) { frequency_second_input_grad_item(a, e); });
    }
  }
};

template <class Launcher>
struct FrequencyPasses : FrequencyItems<Launcher> {};

template <>
struct FrequencyPasses<CpuLauncher>;  // frequency_encode_cpu.cpp

template <class Launcher>
at::Tensor frequency_encode_fwd_driver(const at::Tensor& x, int64_t n_frequencies) {
  const FrequencyEncodeCall call =
      prepare_frequency_encode("frequency_encode_fwd", x, n_frequencies);
  at::Tensor out = call.x.new_empty({call.layout.n_points, call.layout.width()});
  AT_DISPATCH_FLOATING_TYPES(call.x.scalar_type(), "frequency_encode_fwd", [&] {
    FrequencyPasses<Launcher>::forward(
        call.x, FrequencyForward<scalar_t>{call.layout, call.x.data_ptr<scalar_t>(),
                                           out.data_ptr<scalar_t>()});
  });
  return out;
}

// dL/dx [n, d].
template <class Launcher>
at::Tensor frequency_encode_bwd_driver(const at::Tensor& grad_out, const at::Tensor& x,
                                       int64_t n_frequencies) {
  const char* op = "frequency_encode_bwd";
  const FrequencyEncodeCall call = prepare_frequency_encode(op, x, n_frequencies);
  const at::Tensor grad = checked_frequency_gradient(
      op, grad_out, "grad_out", call, call.layout.width(), "[n, d * (1 + 2 * n_frequencies)]");
  at::Tensor x_grad = call.x.new_empty({call.layout.n_points, call.layout.dim});
  AT_DISPATCH_FLOATING_TYPES(call.x.scalar_type(), "frequency_encode_bwd", [&] {
    FrequencyPasses<Launcher>::backward(
        call.x, FrequencyBackward<scalar_t>{call.layout, call.x.data_ptr<scalar_t>(),
                                            grad.data_ptr<scalar_t>(),
                                            x_grad.data_ptr<scalar_t>()});
  });
  return x_grad;
}

// The backward's backward for the incoming gradient gg_x [n, d] of dL/dx: returns
// (dL/dgrad_out [n, width], dL/dx [n, d]), each [0] when not requested.
template <class Launcher>
std::tuple<at::Tensor, at::Tensor> frequency_encode_bwd_bwd_driver(
    const at::Tensor& gg_x, const at::Tensor& grad_out, const at::Tensor& x,
    int64_t n_frequencies, bool grad_out_grad, bool x_grad) {
  const char* op = "frequency_encode_bwd_bwd";
  const FrequencyEncodeCall call = prepare_frequency_encode(op, x, n_frequencies);
  const at::Tensor grad = checked_frequency_gradient(
      op, grad_out, "grad_out", call, call.layout.width(), "[n, d * (1 + 2 * n_frequencies)]");
  const at::Tensor gg = checked_frequency_gradient(op, gg_x, "gg_x", call, call.layout.dim,
                                                   "[n, d] (the shape of x)");
  at::Tensor grad_out_grad_out = grad_out_grad ? grad.new_empty(grad.sizes())
                                               : call.x.new_empty({0});
  at::Tensor x_grad_out = x_grad ? call.x.new_empty(call.x.sizes()) : call.x.new_empty({0});
  if (grad_out_grad || x_grad) {
    AT_DISPATCH_FLOATING_TYPES(call.x.scalar_type(), "frequency_encode_bwd_bwd", [&] {
      FrequencyPasses<Launcher>::second_order(
          call.x, FrequencySecondOrder<scalar_t>{
                      call.layout, call.x.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                      gg.data_ptr<scalar_t>(),
                      grad_out_grad ? grad_out_grad_out.data_ptr<scalar_t>() : nullptr,
                      x_grad ? x_grad_out.data_ptr<scalar_t>() : nullptr});
    });
  }
  return {grad_out_grad_out, x_grad_out};
}

}  // namespace fastfield
