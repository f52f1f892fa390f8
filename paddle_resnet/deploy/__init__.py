"""Deployment: export to Paddle Inference / ONNX, and serve the exported model with ``Predictor``."""
from .export import export_inference
from .model_dir import InferenceConfig
from .predictor import Prediction, Predictor

__all__ = ["export_inference", "InferenceConfig", "Prediction", "Predictor"]
