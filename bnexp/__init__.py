"""bnexp: Batch Normalization experiments on MNIST multilayer perceptrons."""

__version__ = "0.1.0"
