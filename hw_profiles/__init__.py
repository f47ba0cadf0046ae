"""Hardware: device profiles (measured or roofline-estimated) and the one factory that resolves them.

Pure numpy on import; measuring (torch, onnxruntime, TensorRT) lives in `hw_profiles.runtime` and
the modules that use it, imported only when a command needs them.
"""

from hw_profiles.profile import DeviceProfile, load_profile
from hw_profiles.registry import list_devices, resolve_profile

__all__ = ["DeviceProfile", "load_profile", "list_devices", "resolve_profile"]
