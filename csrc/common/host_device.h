// Macros that let one function body serve the CPU driver (host compiler) and the CUDA driver
// (nvcc). Shared math lives in FF_HOST_DEVICE functions; nothing CUDA-only may appear in them.
#pragma once

#if defined(__CUDACC__)
#define FF_HOST_DEVICE __host__ __device__
#define FF_INLINE __forceinline__
#else
#define FF_HOST_DEVICE
#define FF_INLINE inline
#endif
