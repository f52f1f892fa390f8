"""Inference runtimes behind one interface: ``backend.run(batch_nchw_float32) -> np.ndarray``."""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..checks import MAX_WORKERS, check_int
from ..cpu import available_cores
from ..errors import ConfigError, MissingFileError, UserError, check_choice

DEVICES = ("cpu", "gpu")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
PADDLE_GPU_FIX = ("install a CUDA build of PaddlePaddle (pip install paddlepaddle-gpu, "
                  "see https://www.paddlepaddle.org.cn/install/quick) or use device='cpu'")


class RuntimeUnavailable(UserError, RuntimeError):
    """A device or runtime that this installation does not have (a GPU on a CPU-only build, TensorRT)."""


@dataclass
class RuntimeOptions:
    device: str = "cpu"
    cpu_threads: Optional[int] = None  # None: all cores this process may use
    use_mkldnn: bool = True
    use_tensorrt: bool = False
    precision: str = "fp32"
    max_batch_size: int = 16
    image_shape: tuple = (3, 224, 224)
    input_name: str = "x"
    data_format: str = "NCHW"  # the model's internal layout (from inference.yml)

    def __post_init__(self):
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        if self.use_tensorrt and self.device != "gpu":
            raise ConfigError("TensorRT runs on NVIDIA GPUs: pass device='gpu' with use_tensorrt=True")
        if self.device == "cpu" and self.precision == "fp16":
            raise ConfigError("precision='fp16' needs device='gpu'; on CPU use precision='fp32', or 'int8' with "
                              "an export made with --quantize int8")
        if self.device == "gpu" and self.precision == "int8" and not self.use_tensorrt:
            raise ConfigError("precision='int8' needs use_tensorrt=True (TensorRT calibrates and runs int8)")
        if self.precision == "bf16":
            _check_bf16(self)
        check_int("max_batch_size", self.max_batch_size, 1)
        if self.cpu_threads is not None:
            check_int("cpu_threads", self.cpu_threads, 1, MAX_WORKERS)
        self.cpu_threads = self.cpu_threads or available_cores()


BF16_ALTERNATIVES = "use precision='fp32', or 'int8' with an export made with --quantize int8"


def cpu_has_fast_bf16():
    """oneDNN's bfloat16 instructions: avx512_bf16 or AMX (Paddle's check). A CPU with AVX-512 alone runs bf16
    emulated, with nothing to gain over fp32, so it does not count."""
    from paddle.base import core
    return core.supports_bfloat16() and core.supports_bfloat16_fast_performance()


def _check_bf16(options):
    if options.device == "gpu":
        raise ConfigError("precision='bf16' is the CPU path here (Paddle Inference with oneDNN); on device='gpu' "
                          "use precision='fp16'")
    if not options.use_mkldnn:
        raise ConfigError("precision='bf16' runs on oneDNN's kernels: use_mkldnn=False cannot run it; keep "
                          "use_mkldnn=True or use precision='fp32'")
    if not cpu_has_fast_bf16():
        raise ConfigError("precision='bf16' needs a CPU with bfloat16 instructions (avx512_bf16 or amx_bf16 in "
                          f"/proc/cpuinfo), which this one lacks; {BF16_ALTERNATIVES}")


def paddle_inference_config(program_file, params_file, options: RuntimeOptions):
    """The ``paddle.inference.Config`` for ``options`` (separate from the backend so that benchmarks can try
    further switches on it)."""
    import paddle.inference as pi
    config = pi.Config(str(program_file), str(params_file))
    config.disable_glog_info()
    if options.device == "gpu":
        _configure_gpu(config, options, pi)
    else:
        _configure_cpu(config, options)
    # No config.enable_memory_optim(): on CPU it makes create_predictor fail with Paddle 3.
    return config


class PaddleInferenceBackend:
    """Paddle Inference predictor with zero-copy input/output handles."""
    name = "paddle"

    def __init__(self, config):
        import paddle.inference as pi
        self._predictor = pi.create_predictor(config)
        self._input = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
        self._output = self._predictor.get_output_handle(self._predictor.get_output_names()[0])

    def run(self, batch):
        self._input.reshape(list(batch.shape))
        self._input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self._predictor.run()
        return self._output.copy_to_cpu()


def _configure_cpu(config, options):
    config.disable_gpu()
    if options.use_mkldnn and options.data_format == "NHWC":
        # Measured with Paddle 3.3.1: the oneDNN conv kernel transposes the already-NHWC input again.
        raise ConfigError("this model was exported with data_format='NHWC', which Paddle Inference's oneDNN "
                          "kernels cannot run (conv channel mismatch); re-export the same weights built with "
                          "data_format='NCHW', or pass use_mkldnn=False (several times slower)")
    if options.use_mkldnn:
        config.enable_mkldnn()
        if options.precision == "bf16":
            # Paddle 3.3.1's PIR executor honours it: ONEDNN_VERBOSE shows every convolution in bf16
            # (docs/deployment.md#bf16-on-cpus-that-have-it).
            config.enable_mkldnn_bfloat16()
    else:
        config.disable_mkldnn()
    config.set_cpu_math_library_num_threads(options.cpu_threads)


def _configure_gpu(config, options, pi):
    import paddle
    if not paddle.is_compiled_with_cuda():
        raise RuntimeUnavailable(f"device='gpu' was requested but this PaddlePaddle is a CPU-only build; "
                                 f"{PADDLE_GPU_FIX}")
    precision = {"fp32": pi.PrecisionType.Float32, "fp16": pi.PrecisionType.Half,
                 "int8": pi.PrecisionType.Int8}[options.precision]
    if not options.use_tensorrt:
        config.enable_use_gpu(256, 0, precision)
        return
    if pi.get_trt_compile_version() == (0, 0, 0):
        raise RuntimeUnavailable("use_tensorrt=True but this PaddlePaddle was built without TensorRT; install a "
                                 "paddlepaddle-gpu wheel built with TensorRT and put TensorRT's libraries on "
                                 "LD_LIBRARY_PATH, or pass use_tensorrt=False")
    config.enable_use_gpu(256, 0)
    config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=options.max_batch_size,
                                  min_subgraph_size=3, precision_mode=precision, use_static=False,
                                  use_calib_mode=options.precision == "int8")
    shape = list(options.image_shape)
    name = options.input_name
    config.set_trt_dynamic_shape_info({name: [1, *shape]}, {name: [options.max_batch_size, *shape]},
                                      {name: [min(8, options.max_batch_size), *shape]})


SPINNING_STOP = "session.force_spinning_stop"  # ONNX Runtime's session config key


class OnnxRuntimeBackend:
    """ONNX Runtime session; CPU, or CUDA when onnxruntime-gpu is installed."""
    name = "onnxruntime"

    def __init__(self, onnx_file, options: RuntimeOptions, session_config=None):
        """``session_config``: extra ``SessionOptions.add_session_config_entry`` keys and values."""
        import onnxruntime as ort
        if (options.use_tensorrt or options.precision in ("fp16", "bf16")
                or (options.precision, options.device) == ("int8", "gpu")):
            raise ConfigError("the onnxruntime backend runs fp32, and int8 on CPU; "
                              "use backend='paddle' for bf16 / use_tensorrt / fp16 / int8 on GPU")
        providers = ["CPUExecutionProvider"]
        if options.device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeUnavailable("device='gpu' with the onnxruntime backend needs onnxruntime-gpu "
                                         "(pip install onnxruntime-gpu), or use device='cpu'")
            providers.insert(0, "CUDAExecutionProvider")
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = options.cpu_threads
        session_options.inter_op_num_threads = 1
        session_options.log_severity_level = 3  # paddle2onnx leaves unused initializers; ORT warns about each
        # By default the pool's threads spin on after run() returns, on the cores the caller needs then: folder
        # prediction's decoding workers ran at 2/3 speed beside them (benchmarks/bench_inference.py --jpeg-folder).
        for key, value in {SPINNING_STOP: "1", **(session_config or {})}.items():
            session_options.add_session_config_entry(key, str(value))
        self.session = ort.InferenceSession(str(onnx_file), session_options, providers=providers)
        self._input_name = self.session.get_inputs()[0].name

    def run(self, batch):
        return self.session.run(None, {self._input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def _onnxruntime_installed():
    try:
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def resolve_backend(backend, files, options):
    """The backend to use for ``backend="auto"``, else ``backend`` checked against what exists."""
    check_choice("backend", backend, BACKENDS)
    if options.precision == "int8" and options.device == "cpu":
        return _cpu_int8_backend(backend, files)
    if options.precision == "bf16":
        return _bf16_backend(backend)
    if backend == "onnxruntime" and files.onnx is None:
        folder = files.directory or files.program.parent
        raise MissingFileError(f"backend='onnxruntime' needs inference.onnx in {folder}; "
                               "export with export_inference(..., onnx=True)")
    if backend != "auto":
        return backend
    # On CPU, ONNX Runtime is chosen whenever the export has inference.onnx: it ran faster than Paddle Inference
    # with oneDNN at every batch size in benchmarks/bench_inference.py (benchmarks/results/bench_inference.md).
    # GPU and TensorRT stay with Paddle Inference.
    if options.device == "cpu" and files.onnx is not None and _onnxruntime_installed():
        return "onnxruntime"
    return "paddle"


def _cpu_int8_backend(backend, files):
    """int8 on CPU is the ONNX Runtime model of ``export_model.py --quantize int8`` (why: docs/int8.md); Paddle
    Inference's oneDNN int8 is not offered."""
    from .quantize import missing_int8_error
    if backend == "paddle":
        raise ConfigError("precision='int8' on CPU runs the int8 ONNX model with ONNX Runtime: use backend='auto' "
                          "or 'onnxruntime' (Paddle Inference runs int8 with TensorRT on GPU)")
    if files.int8_onnx is None:
        raise missing_int8_error(files.directory or files.program.parent)
    if not _onnxruntime_installed():
        raise RuntimeUnavailable("precision='int8' needs onnxruntime: pip install -e .[onnx]")
    return "onnxruntime"


def _bf16_backend(backend):
    if backend == "onnxruntime":
        raise ConfigError("precision='bf16' runs on the paddle backend only (Paddle Inference with oneDNN): use "
                          "backend='auto' or 'paddle'")
    return "paddle"


def _onnxruntime_backend(files, options):
    return OnnxRuntimeBackend(files.int8_onnx if options.precision == "int8" else files.onnx, options)


def _paddle_backend(files, options):
    return PaddleInferenceBackend(paddle_inference_config(files.program, files.params, options))


# name -> (model files, RuntimeOptions) -> backend; "auto" picks one of them (resolve_backend)
BACKEND_FACTORIES = {"paddle": _paddle_backend, "onnxruntime": _onnxruntime_backend}
BACKENDS = ("auto", *BACKEND_FACTORIES)


def create_backend(backend, files, options):
    return BACKEND_FACTORIES[resolve_backend(backend, files, options)](files, options)
