"""Inference-only rewrites of EfficientNet-Lite: batch norm folded into the convolutions.

In eval mode a batch norm after a convolution is an affine map per channel, so it folds into
the convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_weights``): one
kernel instead of two, the same outputs up to float rounding. ``efficientnet-lite-pytorch``
also pads every convolution with a separate ``ZeroPad2d`` (TensorFlow's "SAME" padding);
where that padding is symmetric (every stride-1 convolution) it moves into the
convolution's own ``padding``. On the project's 2-core machines the two rewrites made a
forward pass of EfficientNet-Lite0 about a fifth faster (see ``docs/performance.rst``).

Only networks that predict are rewritten (a copy; the trained network is left as it is):
a folded network has no batch-norm statistics left to train or save.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from redditvision.backends.local._deps import require

__all__ = [
    "decoded_chunks",
    "fuse_for_inference",
    "inference_network",
    "map_chunks",
    "network_input",
    "stream_plan",
]

_I = TypeVar("_I")
_T = TypeVar("_T")
_R = TypeVar("_R")

# (convolution, batch norm) attribute pairs of efficientnet-lite-pytorch's modules.
_NETWORK_PAIRS = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
_BLOCK_PAIRS = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def _fold(torch: Any, owner: Any, conv_name: str, bn_name: str) -> bool:
    conv = getattr(owner, conv_name, None)
    bn = getattr(owner, bn_name, None)
    if not isinstance(conv, torch.nn.Conv2d) or not isinstance(
        bn, torch.nn.modules.batchnorm._BatchNorm
    ):
        return False
    if bn.running_mean is None or bn.running_var is None:
        return False
    weight, bias = torch.nn.utils.fusion.fuse_conv_bn_weights(
        conv.weight,
        conv.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
    )
    conv.weight, conv.bias = weight, bias
    setattr(owner, bn_name, torch.nn.Identity())
    padding = getattr(conv, "static_padding", None)
    if isinstance(padding, torch.nn.ZeroPad2d):
        left, right, top, bottom = padding.padding
        if left == right and top == bottom and conv.padding == (0, 0):
            conv.padding = (top, left)
            conv.static_padding = torch.nn.Identity()
    return True


def fuse_for_inference(network: Any) -> tuple[Any, int]:
    """Return an eval-mode copy of an EfficientNet-Lite with its batch norms folded.

    Args:
        network: A torch module holding an ``efficientnet_lite_pytorch.EfficientNet``
            (itself, or as ``.net`` as the Lite backbones' feature module does). Other
            networks are returned unchanged (still an eval-mode copy).

    Returns:
        (the copy, the number of batch norms folded: 0 for a network of another kind).
    """
    torch = require("torch")
    fused = copy.deepcopy(network).eval()
    inner = getattr(fused, "net", fused)
    blocks = getattr(inner, "_blocks", None)
    if blocks is None:
        return fused, 0
    folded = sum(_fold(torch, inner, conv, bn) for conv, bn in _NETWORK_PAIRS)
    for block in blocks:
        folded += sum(_fold(torch, block, conv, bn) for conv, bn in _BLOCK_PAIRS)
    for parameter in fused.parameters():
        parameter.requires_grad_(False)
    return fused, folded


def inference_network(network: Any, device: str = "cpu") -> Any:
    """Return the copy of ``network`` that predicts: batch norms folded, channels-last.

    Channels-last (NHWC) memory lets oneDNN run the depthwise and pointwise convolutions
    without reordering; with the folding, EfficientNet-Lite0 went from about 56 to 84 images
    per second in batches of 2 on 2 cores (``docs/performance.rst``).

    Args:
        network: The torch module (see :func:`fuse_for_inference`).
        device: torch device to move the copy to.

    Returns:
        The copy, in eval mode, without gradients; feed it :func:`network_input` tensors.
    """
    torch = require("torch")
    fused, _ = fuse_for_inference(network)
    return fused.to(device).to(memory_format=torch.channels_last)


def network_input(batch: Any) -> Any:
    """Return a float (N, 3, H, W) tensor in the channels-last layout the copy expects."""
    torch = require("torch")
    return batch.contiguous(memory_format=torch.channels_last)


def decoded_chunks(
    images: Sequence[_I],
    chunk_size: int,
    decode: Callable[[Sequence[_I], int], _T],
) -> Iterator[tuple[int, _T]]:
    """Yield ``(start, decode(chunk, start))`` per chunk, decoding the next one meanwhile.

    Pillow decodes and resizes without holding the GIL, so one helper thread decodes chunk
    ``i + 1`` while the caller runs the network on chunk ``i``: on 2 cores the small
    batches that run fastest leave room for it.

    Args:
        images: Encoded images.
        chunk_size: Images per chunk (at least 1).
        decode: ``decode(chunk, start)`` turns one chunk into the network's input; its
            errors (an undecodable image) are raised here, in order.

    Yields:
        The start index and the decoded chunk, in order.
    """
    starts = list(range(0, len(images), max(1, chunk_size)))
    if len(starts) <= 1:
        for start in starts:
            yield start, decode(images[start : start + chunk_size], start)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="redditvision-decode") as pool:
        pending = pool.submit(decode, images[0:chunk_size], 0)
        for position, start in enumerate(starts):
            ready = pending.result()
            if position + 1 < len(starts):
                following = starts[position + 1]
                pending = pool.submit(decode, images[following : following + chunk_size], following)
            yield start, ready


def stream_plan(num_threads: int, device: str, streams: int | None) -> tuple[int, int]:
    """How many batches run at once, and the torch threads each one gets.

    On a CPU, small convolutions scale poorly across threads: EfficientNet-Lite0 at 224 px
    ran about 63 images/s in batches of 2 on 2 threads and about 76 with two batches at
    once on one thread each (2 cores, ``docs/performance.rst``). The default is therefore
    one batch per thread, each on one thread; a GPU runs one batch at a time.

    Args:
        num_threads: The torch threads the extractor may use (at least 1).
        device: ``"cpu"``, ``"cuda"``, ...
        streams: Batches at once, or None for the default.

    Returns:
        (streams, threads per stream), both at least 1.
    """
    if device != "cpu":
        return 1, max(1, num_threads)
    count = max(1, min(num_threads, streams if streams is not None else num_threads))
    return count, max(1, num_threads // count)


def map_chunks(
    images: Sequence[_I],
    chunk_size: int,
    decode: Callable[[Sequence[_I], int], _T],
    infer: Callable[[_T], _R],
    *,
    streams: int = 1,
    threads_per_stream: int = 1,
) -> list[_R]:
    """Return ``infer(decode(chunk, start))`` for each chunk, in chunk order.

    With one stream (or one chunk) the caller runs the network while a helper thread
    decodes the next chunk (:func:`decoded_chunks`). With more, ``streams`` threads each
    decode and run whole chunks, torch set to ``threads_per_stream`` threads for them
    (``torch.set_num_threads`` is read by each new thread on its first operation; the
    caller's setting is restored afterwards). Pillow and torch release the GIL, so the
    streams run in parallel.

    Args:
        images: Encoded images.
        chunk_size: Images per chunk (at least 1).
        decode: ``decode(chunk, start)`` turns one chunk into the network's input.
        infer: Runs the network on one decoded chunk (it must enter
            ``torch.inference_mode`` itself: the mode is per thread).
        streams: Chunks processed at once.
        threads_per_stream: torch threads of each stream.

    Returns:
        One result per chunk, in order.

    Raises:
        Whatever ``decode`` or ``infer`` raise (for an undecodable image, the error of the
        first chunk that holds one).
    """
    size = max(1, chunk_size)
    starts = list(range(0, len(images), size))
    if streams <= 1 or len(starts) <= 1:
        return [infer(ready) for _, ready in decoded_chunks(images, size, decode)]
    torch = require("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads_per_stream)
    try:
        with ThreadPoolExecutor(
            max_workers=min(streams, len(starts)), thread_name_prefix="redditvision-infer"
        ) as pool:
            return list(
                pool.map(lambda start: infer(decode(images[start : start + size], start)), starts)
            )
    finally:
        torch.set_num_threads(previous)
