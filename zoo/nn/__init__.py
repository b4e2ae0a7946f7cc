"""Autoregressive layers (masked, recurrent), activations, initializers."""

from zoo.nn.activations import ACTIVATIONS, reim, reim_relu, reim_selu, reim_tanh
from zoo.nn.initializers import lecun_normal, zeros
from zoo.nn.masked import MaskedConv1D, MaskedConv2D, MaskedDense1D
from zoo.nn.recurrent import LatticeGRU, Neighbourhood, neighbourhood
from zoo.nn.gradient_rules import GradientRule
from zoo.nn.linear import Dense, LayerNorm, Linear
from zoo.nn.attention import CausalSelfAttention
