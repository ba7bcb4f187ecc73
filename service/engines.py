"""THE list of inference engines (POSE_ENGINE): what runs the convolutional networks of the local model.

- `torch`: PyTorch eager, the model as loaded (batch norms folded, NHWC; `service/modeling/inference.py`).
- `openvino`: the networks that take most of the CPU time compiled by OpenVINO for this CPU, in float32, at
  start-up from the loaded model (`service/modeling/compiled_rcnn.py`); nothing is downloaded.

`auto` picks per device: the fastest engine that holds the accuracy bounds on a CPU (torch where OpenVINO is not
installed, e.g. the prepared GPU check's environment), torch on CUDA (the GPU path is PyTorch's). The figures that
chose the default are in docs/engines.md.

No torch import here: the settings validate POSE_ENGINE against this list.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

AUTO = "auto"


@dataclass(frozen=True)
class Engine:
    name: str
    compiled: bool  # its networks are compiled by OpenVINO; False: PyTorch runs the model as loaded
    cuda: bool = False  # it can run on a CUDA device


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine("torch", compiled=False, cuda=True),
        Engine("openvino", compiled=True),
    )
}
ENGINE_CHOICES: tuple[str, ...] = (AUTO, *ENGINES)
DEFAULT_CPU_ENGINE = "openvino"  # docs/engines.md: 0.6x the latency and 2x the throughput, the same answers
DEFAULT_CUDA_ENGINE = "torch"
PORTABLE_ENGINE = "torch"  # runs wherever the service does: auto's choice on a CPU without OpenVINO installed


def resolve_engine(requested: str, device: str) -> Engine:
    """The engine a model on `device` ("cpu", "cuda", "cuda:N") runs on; ValueError for a pair that cannot run."""
    on_cuda = device.startswith("cuda")
    if requested == AUTO:
        if on_cuda:
            return ENGINES[DEFAULT_CUDA_ENGINE]
        return ENGINES[DEFAULT_CPU_ENGINE if importlib.util.find_spec("openvino") else PORTABLE_ENGINE]
    engine = ENGINES.get(requested)
    if engine is None:
        raise ValueError(f"unknown engine {requested!r}; one of {', '.join(ENGINE_CHOICES)}")
    if on_cuda and not engine.cuda:
        raise ValueError(f"engine {requested!r} runs on the CPU only, not on {device}")
    return engine
