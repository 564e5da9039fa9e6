"""Process-level settings (``llm_tf.runtime``): XLA's vector width on import, the experiment scripts' tuned malloc."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from llm_tf import runtime

TUNED = "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"
WIDE = "--xla_cpu_prefer_vector_width=512"
ZEN4_FEATURES = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]


def test_wide_xla_vectors_only_on_cpus_with_avx512_bf16():
    assert runtime.xla_flags_with_wide_vectors({}, ZEN4_FEATURES) == WIDE
    assert runtime.xla_flags_with_wide_vectors({"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}, ZEN4_FEATURES) == (
        "--xla_cpu_enable_fast_math=false " + WIDE)
    # AVX-512 without bfloat16 (Skylake / Cascade Lake servers, whose 512-bit code runs at a lower clock), AVX2
    # only, or flags unknown (no /proc/cpuinfo): XLA's default stays.
    for features in (["avx2", "fma", "avx512f", "avx512_vnni"], ["avx2", "fma"], [], None):
        assert runtime.xla_flags_with_wide_vectors({}, features) is None


def test_wide_xla_vectors_keep_the_users_width_and_honour_the_opt_out():
    assert runtime.xla_flags_with_wide_vectors({"XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}, ZEN4_FEATURES) is None
    assert runtime.xla_flags_with_wide_vectors({"LLM_TF_WIDE_XLA_VECTORS": "0"}, ZEN4_FEATURES) is None
    assert runtime.xla_flags_with_wide_vectors({"LLM_TF_WIDE_XLA_VECTORS": "1"}, ZEN4_FEATURES) == WIDE


@pytest.mark.parametrize("opt_out", [False, True])
def test_importing_llm_tf_sets_the_width_this_cpu_gets(opt_out):
    environment = {key: value for key, value in os.environ.items() if key not in ("XLA_FLAGS",
                                                                                 "LLM_TF_WIDE_XLA_VECTORS")}
    environment["XLA_FLAGS"] = "--xla_cpu_enable_fast_math=false"
    if opt_out:
        environment["LLM_TF_WIDE_XLA_VECTORS"] = "0"
    probe = "import os, sys, llm_tf; print(os.environ['XLA_FLAGS']); print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True,
                            timeout=120, check=True)
    flags, tensorflow_imported = result.stdout.split("\n")[:2]
    features = runtime.cpu_description()["cpu_features"]
    expected = None if opt_out else runtime.xla_flags_with_wide_vectors({"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"},
                                                                        features)
    assert flags == (expected or "--xla_cpu_enable_fast_math=false"), (features, flags)
    assert tensorflow_imported == "False"  # the import that sets the flag stays cheap (and before any XLA)


def test_environment_adds_every_tunable_to_an_empty_environment():
    environment = runtime.tuned_malloc_environment({"PATH": "/bin"})
    assert environment == {"PATH": "/bin", "GLIBC_TUNABLES": TUNED}


def test_environment_keeps_the_users_tunables_and_values():
    environment = runtime.tuned_malloc_environment(
        {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2:glibc.malloc.arena_max=4"})
    assert environment["GLIBC_TUNABLES"] == (
        "glibc.cpu.hwcaps=-AVX2:glibc.malloc.arena_max=4:glibc.malloc.mmap_max=0:"
        "glibc.malloc.trim_threshold=4294967295")


def test_no_reexecution_when_everything_is_set_or_when_opted_out():
    assert runtime.tuned_malloc_environment({"GLIBC_TUNABLES": TUNED}) is None
    assert runtime.tuned_malloc_environment({"LLM_TF_MALLOC_TUNING": "0"}) is None
    # any other value keeps the tuning on
    assert runtime.tuned_malloc_environment({"LLM_TF_MALLOC_TUNING": "1"})["GLIBC_TUNABLES"] == TUNED


# A process that frees a 64 MiB block and allocates it again: with glibc's defaults the block is a fresh mmap
# each time (16,384 page faults to touch it again); under the tuned settings it is reused from the heap.
PROBE = textwrap.dedent("""
    import ctypes, os, resource, sys, types
    from llm_tf.runtime import reexec_with_tuned_malloc
    if "--as-if-in-ipython" in sys.argv:
        sys.modules["IPython"] = types.ModuleType("IPython")
    reexec_with_tuned_malloc("probe" if "--as-if-imported" in sys.argv else __name__)
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 20
    def touch_fresh_block():
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
    touch_fresh_block()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    touch_fresh_block()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(os.environ.get("GLIBC_TUNABLES"), faults, sys.argv[1:])
""")


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc tunables exist on Linux with glibc only")
@pytest.mark.parametrize("untuned", [None, "opted out", "in IPython", "imported"])
def test_reexecution_keeps_large_blocks_mapped(tmp_path, untuned):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("GLIBC_TUNABLES", "LLM_TF_MALLOC_TUNING")}
    flags = ["--flag", "value"]
    if untuned == "opted out":
        environment["LLM_TF_MALLOC_TUNING"] = "0"
    elif untuned == "in IPython":  # `%run script.py` in a kernel: never replace the kernel's process
        flags.append("--as-if-in-ipython")
    elif untuned == "imported":  # a script imported as a module (tests, notebooks) never re-executes
        flags.append("--as-if-imported")
    completed = subprocess.run([sys.executable, str(probe), *flags], env=environment,
                               capture_output=True, text=True, timeout=60, check=True)
    tunables, faults, argv = completed.stdout.split(" ", 2)
    assert argv.strip() == repr(flags)  # the same command line after re-execution
    if untuned:
        assert tunables == "None"
        assert int(faults) > 8000
    else:
        assert tunables == TUNED
        assert int(faults) < 1000
