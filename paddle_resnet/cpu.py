"""How many CPU cores this process may use: the one count every part of the package shares."""
import os


def available_cores():
    """Cores this process may run on (respects taskset / cgroup cpusets where the OS reports them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cores_per_process():
    """The available cores shared among the processes ``paddle.distributed.launch`` started on this machine."""
    local_procs = int(os.environ.get("PADDLE_LOCAL_SIZE", os.environ.get("PADDLE_TRAINERS_NUM", "1")))
    return max(1, available_cores() // max(local_procs, 1))
