"""FLOPs from layer shapes, with the rules of ``paddle.flops`` (which breaks with numpy >= 2.3).

A multiply-add counts once. Convolutions and fully connected layers count one per weight use;
an eval-mode BatchNorm counts two per element (scale, shift); average pools count per output
(adaptive: window size + 1). ReLU and max-pool count nothing. This gives ResNet-50 at 224 px
4.11 G, the figure Paddle users know from ``paddle.flops``.
"""
import math

import paddle
import paddle.nn as nn


def _conv(layer, x, y):
    bias = 1 if layer.bias is not None else 0
    return int(y.numel()) * (layer.weight.shape[1] * math.prod(layer.weight.shape[2:]) + bias)


def _linear(layer, x, y):
    return int(y.numel()) * layer.weight.shape[0]


def _batch_norm(layer, x, y):
    return 2 * int(x.numel())


def _avg_pool(layer, x, y):
    return int(y.numel())


def _adaptive_avg_pool(layer, x, y):
    spatial = (slice(1, 3) if getattr(layer, "_data_format", "NCHW") == "NHWC" else slice(2, 4))
    window = math.prod(i // o for i, o in zip(x.shape[spatial], y.shape[spatial]))
    return int(y.numel()) * (window + 1)


_RULES = {
    nn.Conv2D: _conv,
    nn.Linear: _linear,
    nn.BatchNorm2D: _batch_norm,
    nn.AvgPool2D: _avg_pool,
    nn.AdaptiveAvgPool2D: _adaptive_avg_pool,
}


def count_flops(model, input_size=224, in_channels=3):
    """Multiply-adds of one eval-mode forward pass of a single NCHW image of ``input_size`` pixels."""
    total = 0

    def make_hook(rule):
        def hook(layer, inputs, output):
            nonlocal total
            total += rule(layer, inputs[0], output)
        return hook

    hooks = [layer.register_forward_post_hook(make_hook(_RULES[type(layer)]))
             for layer in model.sublayers() if type(layer) in _RULES]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, in_channels, input_size, input_size]))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total
