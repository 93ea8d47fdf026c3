// The launcher interface that every op driver is written against. A driver (in its family's
// *_host.h) is a template over a Launcher: it checks the arguments, allocates the outputs,
// dispatches on the dtype and hands a per-item function to the launcher; *_cpu.cpp instantiates
// it with CpuLauncher (cpu_launch.h) and registers it for CPU, *_cuda.cu with CudaLauncher
// (cuda_launch.h, .cu files only) for CUDA.
//
//   Launcher::for_each(device_of, n, grain, fn)             fn(i) for every i in [0, n)
//   Launcher::for_each_vectorised(device_of, n, grain, fn)  the same, for an fn whose own loops
//                                                           vectorise (see CpuLauncher)
//   Launcher::for_each_tile(device_of, n, samples, fn)      fn(tile, i) for every i in [0, n),
//                                                           on a tile of lanes (tile.h) whose
//                                                           width suits items of `samples`
//                                                           samples: CudaLauncher (warp lanes)
//                                                           and CpuTileLauncher (tile_cpu.h, the
//                                                           tests' lock-step emulation)
//
// fn is a lambda `[=] FF_HOST_DEVICE (int64_t i) { ... }` that captures the small POD argument
// structs of the shared headers by value (CUDA copies it to the device, so it must not capture
// references or tensors). The CPU splits [0, n) into contiguous tasks of at least `grain` items
// (at::parallel_for); CUDA runs one thread per item and ignores `grain`. device_of is a tensor
// on the device to run on (CUDA: guard and current stream).
//
// Scans along rays run on tiles: the family header holds a `...Rays<Launcher>` policy whose
// general form runs the family's tile functions (functors with a templated operator()) through
// for_each_tile -- the CUDA kernel -- and *_cpu.cpp specialises it for CpuLauncher, which keeps
// its own structure (the vectorised bulk passes that precompute transcendentals for a block of
// rays around a sequential per-ray scan) unless the tile emulation is switched on; the driver
// around it (checks, allocation, dtype dispatch) stays written once.
#pragma once

#include <cstdint>

namespace fastfield {

struct CpuLauncher;  // the families' *Rays policies are specialised for it

// Items per CPU task so that a task holds about work_per_task units of work when each item
// costs work_per_item units (at least one item).
inline int64_t items_per_task(int64_t work_per_item, int64_t work_per_task) {
  const int64_t per_item = work_per_item > 1 ? work_per_item : 1;
  return work_per_task / per_item > 1 ? work_per_task / per_item : 1;
}

}  // namespace fastfield
