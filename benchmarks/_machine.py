"""The header line every benchmark prints: the CPU (model, vendor, cores) and the library versions."""

import importlib.metadata

from llm_tf.training import cpu_summary, library_versions, machine_info

PEERS = ("torch", "keras-hub")


def machine_line() -> str:
    """``machine: <CPU model> (<vendor>, family F model M; <flags>), N cores; tensorflow x, ...`` for a report,
    ending with ``XLA_FLAGS`` when set (``import llm_tf`` sets a vector width on some CPUs: ``llm_tf.runtime``).

    The family / model number and flags tell apart machines that share a model name ("AMD EPYC") but not their
    kernels (AVX-512, bfloat16, AMX).
    """
    info = machine_info()
    versions = library_versions()
    for name in PEERS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    flags = f"; XLA_FLAGS={info['xla_flags']!r}" if info.get("xla_flags") else ""
    return f"machine: {cpu_summary(info)}, {info['cpu_count']} cores; {versions}{flags}"
