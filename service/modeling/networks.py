"""The networks an inference engine runs (service/engines.py): a PyTorch module in, one callable out.

`OpenVinoNetwork` converts a loaded module with OpenVINO's PyTorch frontend and compiles it for this CPU at
start-up (seconds; nothing is read beyond the loaded weights). Its precision is always set, never left to
OpenVINO's default: on CPUs with bfloat16 units that default is bfloat16, which moves scores and boxes
(docs/engines.md). `TorchNetwork` calls the module itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..engines import Engine, Precision

# Dimensions of a network input: a fixed size, or None where each call may differ (batch, image height/width).
Dims = Sequence[int | None]


class Network(Protocol):
    """One compiled network: a float32 NCHW tensor in, its output tensors in order out."""

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class OpenVinoNetwork:
    """A PyTorch module converted and compiled by OpenVINO for the CPU.

    Calls are serialised by a lock of its own (an infer request is not reentrant); the backend already calls its
    networks one at a time, so it never waits on it.
    """

    def __init__(
        self, module: nn.Module, example: torch.Tensor, dims: Dims, threads: int = 0, precision: Precision = "f32"
    ) -> None:
        import openvino as ov

        if len(dims) != example.dim():
            raise ValueError(f"{len(dims)} dims for a {example.dim()}-d example input")
        shape = ov.PartialShape([-1 if size is None else size for size in dims])
        with torch.inference_mode():
            converted = ov.convert_model(module.eval(), example_input=example.contiguous(), input=[shape])
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(converted, "CPU", config)
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        array = np.ascontiguousarray(inputs.detach().to("cpu", torch.float32).numpy())
        with self._lock:
            # Outputs are copied out of the request's buffers: the next call reuses them.
            results = self._request.infer({0: array})
            return tuple(torch.from_numpy(np.array(results[output])) for output in self.compiled.outputs)


class TorchNetwork:
    """The module itself behind the same call (the torch engine)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            outputs = self.module(inputs.contiguous(memory_format=torch.channels_last))
        return tuple(outputs) if isinstance(outputs, tuple | list) else (outputs,)


NetworkBuilder = Callable[[nn.Module, torch.Tensor, Dims], Network]


def network_builder(engine: Engine, threads: int = 0) -> NetworkBuilder:
    """`build(module, example, dims)` for one engine and thread count (what the backend hands its networks; torch
    ignores `threads`: its thread count is process-wide, POSE_TORCH_THREADS)."""
    precision = engine.openvino_precision

    def build(module: nn.Module, example: torch.Tensor, dims: Dims) -> Network:
        if precision is not None:
            return OpenVinoNetwork(module, example, dims, threads, precision)
        return TorchNetwork(module)

    return build
