"""The header line every benchmark prints: the CPU (model, vendor, cores) and the library versions."""

import importlib.metadata

from llm_tf.training import library_versions, machine_info

PEERS = ("torch", "keras-hub")


def machine_line() -> str:
    """``machine: <CPU model> (<vendor>), N cores; tensorflow x, keras y, ...`` for the first line of a report."""
    info = machine_info()
    cpu = info.get("cpu_model") or info.get("processor")
    vendor = f" ({info['cpu_vendor']})" if info.get("cpu_vendor") else ""
    versions = library_versions()
    for name in PEERS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    return f"machine: {cpu}{vendor}, {info['cpu_count']} cores; {versions}"
