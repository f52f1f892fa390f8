"""Device choice and CPU threads."""
import os

import paddle
import paddle.distributed as dist

from ..cpu import cores_per_process
from ..errors import UserError, check_choice
from .logger import LOGGER

DEVICES = ("auto", "cpu", "gpu")


class DeviceUnavailable(UserError, RuntimeError):
    pass


def cuda_available():
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def cpu_threads(requested=None):
    """All cores by default, shared among the processes of this machine (paddle.distributed.launch)."""
    return int(requested) if requested else cores_per_process()


def select_device(requested="auto", num_threads=None):
    """Sets Paddle's device and returns "gpu" or "cpu"."""
    check_choice("Global.device", requested, DEVICES)
    has_gpu = cuda_available()
    if requested == "gpu" and not has_gpu:
        reason = ("this Paddle build has no CUDA support" if not paddle.is_compiled_with_cuda()
                  else "no GPU is visible (check CUDA_VISIBLE_DEVICES)")
        raise DeviceUnavailable(f"Global.device=gpu, but {reason}: install paddlepaddle-gpu (see README, "
                           "Install) or run with -o Global.device=cpu")
    if requested == "gpu" or (requested == "auto" and has_gpu):
        local_rank = int(os.environ.get("PADDLE_LOCAL_RANK", dist.ParallelEnv().local_rank))
        paddle.set_device(f"gpu:{local_rank}")
        return "gpu"
    paddle.set_device("cpu")
    threads = cpu_threads(num_threads)
    # Dygraph runs its CPU kernels on one thread unless told otherwise.
    paddle.base.core.set_num_threads(threads)
    LOGGER.debug(f"device: cpu, {threads} thread(s)" + (" (no CUDA GPU)" if requested == "auto" else ""))
    return "cpu"
