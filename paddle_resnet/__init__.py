"""paddle_resnet: the ResNet family for PaddlePaddle, with training, export and deployment."""
import warnings

# Paddle warns at import about a C++ extension cache that model code never uses, and on every
# training-mode BatchNorm call that it tracks running statistics, which is what BatchNorm is for.
warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
from .models import ResNet, build_model, count_flops, list_models, model_args

__version__ = "0.1.0"
__all__ = ["ResNet", "build_model", "count_flops", "list_models", "model_args", "load_pretrained"]


def __getattr__(name):
    # Imported lazily so that building a model never pulls in the checkpoint readers.
    if name == "load_pretrained":
        from .weights import load_pretrained
        return load_pretrained
    raise AttributeError(f"module 'paddle_resnet' has no attribute {name!r}")
