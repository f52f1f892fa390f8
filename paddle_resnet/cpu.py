"""The CPU: how many cores this process may use (the one count every part of the package shares), and its name and
ISA, which every measured figure names."""
import os
import re

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def available_cores():
    """Cores this process may run on (respects taskset / cgroup cpusets where the OS reports them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cores_per_process():
    """The available cores shared among the processes ``paddle.distributed.launch`` started on this machine."""
    local_procs = int(os.environ.get("PADDLE_LOCAL_SIZE", os.environ.get("PADDLE_TRAINERS_NUM", "1")))
    return max(1, available_cores() // max(local_procs, 1))


def cpu_description():
    """The CPU's model name and the ISA flags oneDNN and MKL pick their kernels by, e.g. ``Intel(R) Xeon(R)
    Processor (avx2+avx512f+avx512_vnni+avx512_bf16+amx_bf16)``; with ``ONEDNN_MAX_CPU_ISA`` when it is set."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        text = ""
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    present = set(flags[1].split()) if flags else set()
    isa = "+".join(flag for flag in ISA_FLAGS if flag in present) or "unknown ISA"
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{name[1].strip() if name else 'unknown CPU'} ({isa}{f', ONEDNN_MAX_CPU_ISA={limit}' if limit else ''})"
