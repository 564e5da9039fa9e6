"""Process-level settings for CPU work: wider vectors in XLA's own loops, and glibc's allocator tuned for TensorFlow.

**XLA's vector width.** XLA:CPU compiles its fused loops with LLVM told to prefer 256-bit vectors, also on CPUs with
512-bit ones. Batch-1 decoding with weights in bfloat16 or int8 (``GPT.generate(weight_dtype=...)``) spends most of
each step in such loops, converting each weight to float32 inside the product, and there the width counts: on an
AVX-512 Intel Xeon (family 6 model 167), GPT-2 small at batch 1 decoded 1.20–1.25× faster with bfloat16 weights and
1.22–1.31× with int8 weights under 512-bit vectors (two pairs of runs, ``benchmarks/profile_generation.py`` and
``benchmarks/generation.py``; against the same run's float32, 1.13× → 1.37× and 1.42× → 1.79×), while float32
decoding and the training step, whose products run in Eigen's own kernels, stayed within run-to-run noise. ``import
llm_tf`` therefore adds ``--xla_cpu_prefer_vector_width=512`` to ``XLA_FLAGS`` on CPUs with ``avx512_bf16`` (Zen 4
and later, Sapphire Rapids and later: cores whose 512-bit instructions do not lower the clock much; older AVX-512
parts are left at 256) (:func:`use_wide_xla_vectors`). XLA reads ``XLA_FLAGS`` once, at its first compilation, so
the flag only takes effect when llm_tf is imported before anything is compiled with XLA; a width the user set in
``XLA_FLAGS`` wins, and ``LLM_TF_WIDE_XLA_VECTORS=0`` opts out.

**The allocator.** By default glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and returns it with ``munmap`` when freed, and TensorFlow's worker threads allocate from per-thread arenas
that are trimmed back to the kernel. A training step that allocates and frees the same large tensors every step (the
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
from collections.abc import Mapping, Sequence

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


# The instruction-set extensions that decide which CPU kernels TensorFlow/oneDNN and XLA can use: two machines
# that both report "AMD EPYC" ran the bfloat16 translation step 3x apart (one with AVX-512 and avx512_bf16, one
# with AVX2 only), so a figure is only comparable with these flags next to it.
CPU_FEATURES_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
                            "amx_bf16", "amx_int8")


def cpu_description(cpuinfo_path: str = "/proc/cpuinfo") -> dict:
    """The first CPU's model name, vendor, family / model number and kernel-relevant flags from ``/proc/cpuinfo``.

    Args:
        cpuinfo_path: the file to read (Linux's ``/proc/cpuinfo``; a missing file gives None / empty values).

    Returns:
        ``{"cpu_model", "cpu_vendor", "cpu_family", "cpu_model_number", "cpu_features"}``; ``cpu_features`` lists
        the flags of :data:`CPU_FEATURES_OF_INTEREST` the CPU has, in that order (None when unknown).

    Example:
        >>> sorted(cpu_description("/nonexistent"))
        ['cpu_family', 'cpu_features', 'cpu_model', 'cpu_model_number', 'cpu_vendor']
    """
    fields = {"model name": None, "vendor_id": None, "cpu family": None, "model": None, "flags": None}
    try:
        with open(cpuinfo_path, encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in fields and fields[key] is None:
                    fields[key] = value.strip()
                if not line.strip() and fields["model name"] is not None:
                    break  # the first processor's block is enough
    except OSError:
        pass
    flags = None if fields["flags"] is None else set(fields["flags"].split())
    return {
        "cpu_model": fields["model name"],
        "cpu_vendor": fields["vendor_id"],
        "cpu_family": int(fields["cpu family"]) if (fields["cpu family"] or "").isdigit() else None,
        "cpu_model_number": int(fields["model"]) if (fields["model"] or "").isdigit() else None,
        "cpu_features": None if flags is None else [name for name in CPU_FEATURES_OF_INTEREST if name in flags],
    }


XLA_VECTOR_WIDTH_FLAG = "--xla_cpu_prefer_vector_width"
WIDE_XLA_VECTORS_OPT_OUT_VARIABLE = "LLM_TF_WIDE_XLA_VECTORS"
# The CPU flag that marks a core worth giving 512-bit vectors (see the module docstring).
WIDE_XLA_VECTORS_CPU_FEATURE = "avx512_bf16"


def xla_flags_with_wide_vectors(environ: Mapping[str, str], cpu_features: Sequence[str] | None) -> str | None:
    """The ``XLA_FLAGS`` value that asks XLA:CPU for 512-bit vectors, or ``None`` to leave the environment alone.

    ``None`` when ``LLM_TF_WIDE_XLA_VECTORS=0``, when the CPU lacks :data:`WIDE_XLA_VECTORS_CPU_FEATURE` (or its
    flags are unknown), or when ``XLA_FLAGS`` already sets a vector width (the user's choice is kept). Otherwise
    the current ``XLA_FLAGS`` with ``--xla_cpu_prefer_vector_width=512`` appended.

    Example:
        >>> xla_flags_with_wide_vectors({"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}, ["avx512f", "avx512_bf16"])
        '--xla_cpu_enable_fast_math=false --xla_cpu_prefer_vector_width=512'
        >>> xla_flags_with_wide_vectors({}, ["avx2", "fma"]) is None
        True
    """
    if environ.get(WIDE_XLA_VECTORS_OPT_OUT_VARIABLE, "1").strip() == "0":
        return None
    if not cpu_features or WIDE_XLA_VECTORS_CPU_FEATURE not in cpu_features:
        return None
    current = environ.get("XLA_FLAGS", "")
    if XLA_VECTOR_WIDTH_FLAG in current:
        return None
    return f"{current} {XLA_VECTOR_WIDTH_FLAG}=512".strip()


def use_wide_xla_vectors() -> bool:
    """Set :func:`xla_flags_with_wide_vectors` in ``os.environ`` for this process; True when it changed.

    ``import llm_tf`` calls it. Effective only before XLA's first compilation in the process (XLA reads its flags
    once); afterwards it changes nothing that runs.
    """
    flags = xla_flags_with_wide_vectors(os.environ, cpu_description()["cpu_features"])
    if flags is None:
        return False
    os.environ["XLA_FLAGS"] = flags
    return True
