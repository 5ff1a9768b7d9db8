"""fireforge: SqueezeNet-family CNNs to byte-exact FPGA accelerators."""

__version__ = "0.1.0"
