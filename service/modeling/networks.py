"""The networks an inference engine runs (service/engines.py): a PyTorch module in, one callable out.

`OpenVinoNetwork` converts a loaded module with OpenVINO's PyTorch frontend and compiles it for this CPU. The
conversion (tracing the module) is most of an OpenVINO start-up, so its result can be kept in a cache folder
(POSE_ENGINE_CACHE_DIR), named by a digest of everything it depends on: the module's structure and weights, the
input's shape and free dimensions, and the OpenVINO version. A changed model or upgrade is a new name, never a
stale hit. Compiling for the CPU at hand always happens at start-up (under a second).

The precision is float32, set explicitly: on CPUs with bfloat16 units OpenVINO's default is bfloat16, which moved
the main car's box by more than 2 px on 38 of the 100 test photos (docs/engines.md).

Memory: OpenVINO repacks the weights into its own layout (at compilation, or at the first call for free input
dimensions) and keeps the originals it read. A network read from the cache reads them from our own mapping of the
file (`MappedWeights`), and after its first call hands those pages back to the kernel: 30 MB less resident for
the four networks, each page read again from the file if a new input shape needs it (docs/engines.md). A network
built with `keep_memory=False` also hands back its working memory (its intermediate tensors) after each call.

`TorchNetwork` calls the module itself.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..engines import Engine

log = logging.getLogger("service.modeling.networks")

# Dimensions of a network input: a fixed size, or None where each call may differ (batch, image height/width).
Dims = Sequence[int | None]


class Network(Protocol):
    """One compiled network: a float32 NCHW tensor in, its output tensors in order out. The outputs may be the
    network's own buffers: they hold until its next call (every caller uses them up first: the backend calls its
    networks one at a time, under its lock, and keeps only what it computes from them)."""

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


def network_digest(module: nn.Module, example: torch.Tensor, dims: Dims, converter_version: str) -> str:
    """What a converted network depends on, as a hex digest (the cache file's name)."""
    digest = hashlib.sha256()
    for part in (converter_version, repr(module), str(tuple(example.shape)), str(tuple(dims))):
        digest.update(part.encode())
        digest.update(b"\0")
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


class MappedWeights:
    """A converted network's weights file mapped into memory by us, for OpenVINO to read its constants from.

    OpenVINO's own reader maps the file too, but only a mapping of ours can be handed back (`drop_pages`). The
    mapping is copy-on-write because OpenVINO shares only writable arrays; it never writes to it (its own mapping
    of the same file is read-only), so a dropped page read again is the file's, as before.
    """

    def __init__(self, path: Path) -> None:
        import openvino as ov

        with open(path, "rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
        # The constants point into this tensor without owning it: it (and so the mapping) must live as long as
        # the network does.
        self.tensor = ov.Tensor(np.frombuffer(self._map, dtype=np.uint8), shared_memory=True)

    def drop_pages(self) -> None:
        """Take the file's pages out of this process's resident memory (they stay in the page cache): the next read
        of one maps it again from the file. A no-op where madvise is missing."""
        if hasattr(self._map, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)


class OpenVinoNetwork:
    """An OpenVINO model compiled for the CPU in float32; `from_module` converts a PyTorch module into one (or
    reads the conversion from the cache).

    Calls are serialised by a lock of its own (an infer request is not reentrant); the backend already calls its
    networks one at a time, so it never waits on it.
    """

    def __init__(
        self, model: Any, threads: int = 0, weights: MappedWeights | None = None, keep_memory: bool = True
    ) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(model, "CPU", config)
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()
        # Where `model` read its constants from (the compiled model reads them there): mapped for its lifetime,
        # the pages handed back after the first call, once every weight is repacked.
        self._weights = weights
        self._weight_pages_dropped = False
        self._keep_memory = keep_memory

    @classmethod
    def from_file(cls, xml_path: Path, threads: int = 0, keep_memory: bool = True) -> OpenVinoNetwork:
        """A network from a converted IR pair (`xml_path` and its .bin), its weights in `MappedWeights`."""
        import openvino as ov

        weights = MappedWeights(xml_path.with_suffix(".bin"))
        return cls(ov.Core().read_model(xml_path.read_text(), weights.tensor), threads, weights, keep_memory)

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        example: torch.Tensor,
        dims: Dims,
        threads: int = 0,
        cache_dir: Path | None = None,
        keep_memory: bool = True,
    ) -> OpenVinoNetwork:
        import openvino as ov

        if len(dims) != example.dim():
            raise ValueError(f"{len(dims)} dims for a {example.dim()}-d example input")
        module.eval()
        cached = (
            None if cache_dir is None else cache_dir / f"{network_digest(module, example, dims, ov.__version__)}.xml"
        )
        if cached is not None and cached.is_file():
            return cls.from_file(cached, threads, keep_memory)
        shape = ov.PartialShape([-1 if size is None else size for size in dims])
        with torch.inference_mode():
            # Copies of the weights, not views of the module's tensors: `network_builder` frees those.
            converted = ov.convert_model(module, example_input=example.contiguous(), input=[shape], share_weights=False)
        if cached is not None and _save_atomically(ov, converted, cached):
            return cls.from_file(cached, threads, keep_memory)  # as every later start: weights mapped from the file
        return cls(converted, threads, keep_memory=keep_memory)

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        array = np.ascontiguousarray(inputs.detach().to("cpu", torch.float32).numpy())
        with self._lock:
            # No copies in or out (the dense stage's outputs are ~5 MB a photo): the outputs are the request's
            # own buffers, valid until its next call (the Network contract).
            results = self._request.infer({0: array}, share_inputs=True, share_outputs=True)
            if self._weights is not None and not self._weight_pages_dropped:
                # The first call has repacked the weights: their originals can go (the ~5 MB some kernels read
                # directly at every call come back from the file at the next one and stay).
                self._weights.drop_pages()
                self._weight_pages_dropped = True
            if not self._keep_memory:
                # Frees the intermediate tensors (allocated again at the next call); the outputs are the request's
                # own buffers, which it keeps.
                self.compiled.release_memory()
            return tuple(torch.from_numpy(results[output]) for output in self.compiled.outputs)


def _save_atomically(ov: Any, model: Any, xml_path: Path) -> bool:
    """The IR pair under temporary names, then renamed: the .bin first, so a present .xml always has its .bin.
    Two processes converting at once both write the same content. A cache that cannot be written costs only
    the next start's conversion (False)."""
    try:
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = xml_path.with_name(f".{xml_path.stem}.{os.getpid()}.{threading.get_ident()}.xml")
        ov.save_model(model, temporary, compress_to_fp16=False)  # the folded float32 weights, unrounded
        os.replace(temporary.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(temporary, xml_path)
    except OSError as exc:
        log.warning("could not keep the converted network in %s: %s", xml_path.parent, exc)
        return False
    return True


class TorchNetwork:
    """The module itself behind the same call (the torch engine)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            outputs = self.module(inputs.contiguous(memory_format=torch.channels_last))
        return tuple(outputs) if isinstance(outputs, tuple | list) else (outputs,)


class NetworkBuilder(Protocol):
    """`build(module, example, dims)` -> the module's network for one engine. `keep_memory=False`: a compiled
    network frees its working memory after each call, for one whose memory is small beside its run time and not
    needed while the others run (the heads and the view classifier beside the dense stage, the process's peak:
    docs/engines.md)."""

    def __call__(
        self, module: nn.Module, example: torch.Tensor, dims: Dims, *, keep_memory: bool = True
    ) -> Network: ...


def network_builder(engine: Engine, threads: int = 0, cache_dir: Path | None = None) -> NetworkBuilder:
    """`build(module, example, dims)` for one engine (what the backend hands its networks). torch ignores the
    rest: its thread count is process-wide (POSE_TORCH_THREADS), it has nothing to convert, and its working
    memory is freed after each call anyway.

    A compiled engine's network holds its own copy of the weights, so the module's are freed: it moves to the
    meta device, where it keeps its structure and attributes (the backbone's size divisibility, its output
    shapes) and running it fails loudly (19 MB less resident with the default model, docs/engines.md)."""

    def build(module: nn.Module, example: torch.Tensor, dims: Dims, *, keep_memory: bool = True) -> Network:
        if engine.compiled:
            network = OpenVinoNetwork.from_module(module, example, dims, threads, cache_dir, keep_memory)
            module.to("meta")
            return network
        return TorchNetwork(module)

    return build
