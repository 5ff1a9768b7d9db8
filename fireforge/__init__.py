"""fireforge: SqueezeNet-family CNNs to byte-exact FPGA accelerators."""

__version__ = "0.1.0"

from fireforge.api import Accelerator, build_model, compile, explore, load  # noqa: E402  (the Python API)

__all__ = ["Accelerator", "build_model", "compile", "explore", "load", "__version__"]
