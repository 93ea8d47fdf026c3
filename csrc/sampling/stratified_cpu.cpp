// CPU kernel of stratified_samples: the driver of stratified_host.h on the CPU launcher.
#include <torch/library.h>

#include "../common/cpu_launch.h"
#include "stratified_host.h"

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("stratified_samples", &fastfield::stratified_samples_driver<fastfield::CpuLauncher>);
}
