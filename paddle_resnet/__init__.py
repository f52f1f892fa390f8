"""paddle_resnet: the ResNet family for PaddlePaddle, with training, export and deployment."""
import importlib
import warnings

# Paddle warns at import about a C++ extension cache that model code never uses, and on every
# training-mode BatchNorm call that it tracks running statistics, which is what BatchNorm is for.
warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
warnings.filterwarnings("ignore", message="full_graph=False don.t support input_spec")  # paddle.jit.save of ours

__version__ = "0.1.0"
__all__ = ["ResNet", "build_model", "count_flops", "list_models", "model_args", "load_pretrained"]
# Imported on first use, so that the tools can quiet Paddle (verbosity.py) before anything imports it, and
# building a model never pulls in the checkpoint readers.
_LAZY = {"ResNet": ".models", "build_model": ".models", "count_flops": ".models", "list_models": ".models",
         "model_args": ".models", "load_pretrained": ".weights"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'paddle_resnet' has no attribute {name!r}")
