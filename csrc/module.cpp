// Makes the compiled library importable as the Python module fastfield._C. Loading it runs the
// TORCH_LIBRARY registrations; the operators are then reached through torch.ops.fastfield.
#include <Python.h>

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
