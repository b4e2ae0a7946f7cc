"""Masked autoregressive layers, activations and initializers."""

from zoo.nn.activations import ACTIVATIONS, reim, reim_relu, reim_selu, reim_tanh
from zoo.nn.initializers import lecun_normal, zeros
from zoo.nn.masked import MaskedConv1D, MaskedConv2D, MaskedDense1D
