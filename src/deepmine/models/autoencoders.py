"""Deep-MINE's three view autoencoders, each with its decoder tied to its encoder.

Tied means the decoder calls the encoder's own parameters (transposed linear maps, transposed
convolutions with the encoder's kernels), so each weight is one tensor with one gradient and one
optimiser entry. Only the decoder's biases are its own.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from tqdm import tqdm

from ..features import IMAGE_SIZE


class ImageAutoencoder(nn.Module):
    """40x40 RGB image <-> dim_node code.

    Encoder: conv 3x3 (3->64) + ReLU, conv 3x3 (64->64) + ReLU, max-pool 2, flatten 64*20*20,
    linear -> dim_node. The code is linear (no nonlinearity), as the integration embedding E
    that reads it is linear too.
    Decoder: linear with the transposed code matrix, unflatten, nearest-neighbour upsampling x2,
    transposed conv with conv2's kernel + ReLU, transposed conv with conv1's kernel, sigmoid, so
    pixels come out in [0, 1] like the input.

    NOTE: upsampling is nearest-neighbour, not max-unpooling with the encoder's pool indices:
    unpooling would hand the decoder where each maximum was, information that bypasses the code.
    """

    def __init__(self, dim_node: int, channels: int = 64):
        super().__init__()
        self.channels = channels
        self.pooled = IMAGE_SIZE // 2
        self.conv1 = nn.Conv2d(3, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.code = nn.Linear(channels * self.pooled * self.pooled, dim_node)
        self.decode_bias_code = nn.Parameter(torch.zeros(channels * self.pooled * self.pooled))
        self.decode_bias_conv2 = nn.Parameter(torch.zeros(channels))
        self.decode_bias_conv1 = nn.Parameter(torch.zeros(3))
        # Kernels stored channels-last make the CPU convolutions take their faster path in the
        # decoder too, because the encoder's input already is channels-last. A training step of
        # the image autoencoder got 1.2x faster on the 2-core benchmark machine.
        self.to(memory_format=torch.channels_last)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, 40, 40) pixels in [0, 1] -> (b, dim_node) codes."""
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = F.max_pool2d(h, 2)
        return self.code(h.flatten(1))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """(b, dim_node) codes -> (b, 3, 40, 40) pixels in [0, 1]."""
        h = F.linear(code, self.code.weight.t(), self.decode_bias_code)
        h = h.view(-1, self.channels, self.pooled, self.pooled)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = F.relu(F.conv_transpose2d(h, self.conv2.weight, self.decode_bias_conv2, padding=1))
        return torch.sigmoid(F.conv_transpose2d(h, self.conv1.weight, self.decode_bias_conv1, padding=1))

    def weights(self) -> list[torch.Tensor]:
        """W_image: every kernel and matrix, each shared by the encoder and the decoder."""
        return [self.conv1.weight, self.conv2.weight, self.code.weight]

    def biases(self) -> list[torch.Tensor]:
        """b_image: the encoder's biases and the decoder's own."""
        return [self.conv1.bias, self.conv2.bias, self.code.bias,
                self.decode_bias_code, self.decode_bias_conv2, self.decode_bias_conv1]


class TextAutoencoder(nn.Module):
    """text vector (d_text) <-> dim_node code.

    Encoder: linear d_text -> hidden + tanh, linear hidden -> dim_node (a linear code).
    Decoder: the transposed matrices in reverse order, tanh on the hidden layer, and a linear
    output, because the text vectors are PCA coordinates of either sign and any scale.
    """

    def __init__(self, d_text: int, hidden: int, dim_node: int):
        super().__init__()
        self.hidden = nn.Linear(d_text, hidden)
        self.code = nn.Linear(hidden, dim_node)
        self.decode_bias_hidden = nn.Parameter(torch.zeros(hidden))
        self.decode_bias_out = nn.Parameter(torch.zeros(d_text))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(torch.tanh(self.hidden(x)))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(F.linear(code, self.code.weight.t(), self.decode_bias_hidden))
        return F.linear(h, self.hidden.weight.t(), self.decode_bias_out)

    def weights(self) -> list[torch.Tensor]:
        return [self.hidden.weight, self.code.weight]

    def biases(self) -> list[torch.Tensor]:
        return [self.hidden.bias, self.code.bias, self.decode_bias_hidden, self.decode_bias_out]


def run_autoencoder(autoencoder: ImageAutoencoder | TextAutoencoder, raw: torch.Tensor, *,
                    prepare: Callable[[torch.Tensor], torch.Tensor], reconstruct: bool,
                    chunk: int = 0, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode `raw` inputs in chunks of `chunk` rows (0: all at once).

    Returns the codes (n, dim_node) and, when `reconstruct`, the summed squared reconstruction
    error sum_j |x_j - x_hat_j|^2 of all rows (else a zero scalar). `prepare` turns a stored
    chunk into the encoder's input (uint8 images into floats in [0, 1]). While autograd records,
    each chunk runs under activation checkpointing: only its raw input and outputs stay in memory
    until the backward pass recomputes it, so memory is bounded by `chunk` rows of activations
    however many items a batch encodes.
    """

    def encode_chunk(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = prepare(part)
        code = autoencoder.encode(x)
        if not reconstruct:
            return code, torch.zeros((), device=code.device)
        x_hat = autoencoder.decode(code)
        return code, (x.float() - x_hat.float()).pow(2).sum()

    size = chunk if chunk > 0 else max(len(raw), 1)
    starts = range(0, len(raw), size)
    use_checkpoint = chunk > 0 and torch.is_grad_enabled()
    codes, errors = [], []
    for start in tqdm(starts, desc="encoding items", unit="chunk", disable=not progress, leave=False):
        part = raw[start:start + size]
        if use_checkpoint:
            code, error = checkpoint(encode_chunk, part, use_reentrant=False)
        else:
            code, error = encode_chunk(part)
        codes.append(code)
        errors.append(error)
    if not codes:
        raise ValueError("run_autoencoder needs at least one row")
    return torch.cat(codes), torch.stack(errors).sum()
