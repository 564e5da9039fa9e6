"""Process-level settings for training on CPU: glibc's allocator tuned for TensorFlow's large, short-lived tensors.

Why: by default glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, and TensorFlow's worker threads allocate from per-thread arenas that are
trimmed back to the kernel. A training step that allocates and frees the same large tensors every step (the
translation model's logits and their gradient are 2,048 × 8,000 floats) then faults in and zeroes the same memory
again each step: ~32,000 page faults and 0.3 of the 2 cores in the kernel per translation step.

Serving everything from one arena, never with ``mmap`` and never trimmed (``MALLOC_TUNABLES``) keeps that memory
mapped between steps: the same steps ran 1.21× (float32) and 1.23× (bfloat16) faster with ~10 page faults per
step and the same peak memory (AMD EPYC, 2 cores). Steps compiled by XLA manage their own buffers and run at the
same speed either way (the causal-LM pretraining step was measured), as do steps without large tensors (the news
classifier, the masked-LM step). glibc reads its tunables once, when the process starts, so the experiment
scripts re-execute themselves under them (:func:`reexec_with_tuned_malloc`) before TensorFlow is imported. Set
``LLM_TF_MALLOC_TUNING=0`` to opt out; tunables the user already set in ``GLIBC_TUNABLES`` win.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

MALLOC_TUNABLES = (
    ("glibc.malloc.arena_max", "1"),  # one arena: memory freed by any thread is reused by all of them
    ("glibc.malloc.mmap_max", "0"),  # large blocks come from the heap too, so they stay mapped when freed
    ("glibc.malloc.trim_threshold", "4294967295"),  # and the heap is not shrunk back between steps
)
OPT_OUT_VARIABLE = "LLM_TF_MALLOC_TUNING"


def tuned_malloc_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to re-execute under, or ``None`` when the process needs no re-execution.

    ``None`` when ``LLM_TF_MALLOC_TUNING=0`` or when ``GLIBC_TUNABLES`` already names every key of
    ``MALLOC_TUNABLES`` (with any value: the user's choice is kept). Otherwise a copy of ``environ`` whose
    ``GLIBC_TUNABLES`` keeps what was there and appends the missing keys.

    Example:
        >>> tuned_malloc_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"})["GLIBC_TUNABLES"]
        'glibc.malloc.arena_max=4:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295'
    """
    if environ.get(OPT_OUT_VARIABLE, "1").strip() == "0":
        return None
    existing = [item for item in environ.get("GLIBC_TUNABLES", "").split(":") if item]
    present = {item.split("=", 1)[0] for item in existing}
    missing = [f"{key}={value}" for key, value in MALLOC_TUNABLES if key not in present]
    if not missing:
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(existing + missing)}


def reexec_with_tuned_malloc(module_name: str) -> None:
    """Re-execute this Python process under :data:`MALLOC_TUNABLES` (Linux with glibc only; else a no-op).

    Call it first thing in a script, before TensorFlow is imported, as ``reexec_with_tuned_malloc(__name__)``:
    when the script runs as the program (``module_name == "__main__"``) it replaces the process (same
    interpreter, same command line) and returns only when nothing needs to change; when the script is imported
    (tests, ``from experiments import ...``) it does nothing. Never inside IPython / Jupyter either (``%run
    script.py`` runs a script as ``__main__``; replacing the process there would end the kernel).

    Example:
        >>> reexec_with_tuned_malloc("experiments.translation")  # imported, not run: nothing happens
    """
    if module_name != "__main__":
        return
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    if "IPython" in sys.modules or "ipykernel" in sys.modules:
        return
    environment = tuned_malloc_environment(os.environ)
    if environment is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), environment)
