// The ocl device guard in C++: what torch's Python backend guard answers, without Python.
//
// torch asks a device's guard for the current device and stream whenever autograd makes or
// runs a node of that device (over a thousand times in a training step of a small network).
// The Python guard that torch.utils.backend_registration registers goes through pybind11 for
// each question (taking the GIL, looking up the override); this one answers in place. Its
// answers are the Python guard's: device 0, one device, the default stream, setDevice ignored,
// no events (ops take their device from their tensors, see DESIGN.md). Compiled against the
// installed torch's headers by native_guard.py.
#include <c10/core/impl/DeviceGuardImplInterface.h>

namespace {

using c10::Device;
using c10::DeviceType;
using c10::Stream;

constexpr DeviceType kOcl = DeviceType::PrivateUse1;

struct OclGuard final : c10::impl::DeviceGuardImplInterface {
  DeviceType type() const override { return kOcl; }
  Device exchangeDevice(Device) const override { return Device(kOcl, 0); }
  Device getDevice() const override { return Device(kOcl, 0); }
  void setDevice(Device) const override {}
  void uncheckedSetDevice(Device) const noexcept override {}
  Stream getStream(Device) const noexcept override { return Stream(Stream::DEFAULT, Device(kOcl, 0)); }
  Stream exchangeStream(Stream) const noexcept override { return Stream(Stream::DEFAULT, Device(kOcl, 0)); }
  c10::DeviceIndex deviceCount() const noexcept override { return 1; }
};

}  // namespace

extern "C" void oclcore_install_device_guard() {
  // Never freed: torch may consult the registry while the process exits.
  static const OclGuard* guard = new OclGuard();
  c10::impl::device_guard_impl_registry[static_cast<size_t>(kOcl)].store(guard);
}
