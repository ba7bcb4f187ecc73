"""carpose's runtime library; the HTTP edge is `service.api`.

Importing it keeps Triton out of the process. Triton is PyTorch's compiler for GPU kernels, used only by
`torch.compile`, which carpose never calls; but torchvision's `roi_align` imports `torch._dynamo`, which imports
Triton wherever it is installed (the PyPI torch wheels depend on it on Linux): about 75 MB resident in every process
that serves the model, for nothing (docs/engines.md). Marked absent before torch is imported, it is treated as not
installed. A process that imported Triton before importing carpose keeps it.
"""

import sys

sys.modules.setdefault("triton", None)  # type: ignore[arg-type]
