"""Learning-rate schedules and the optimizer, from the Optimizer section.

Schedules step once per optimizer step (not per epoch), so warm-up and cosine are smooth.
"""
import paddle
import paddle.nn as nn

from ..errors import ConfigError, check_choice

LR_SCHEDULES = ("Cosine", "Step", "Constant")
OPTIMIZERS = ("Momentum", "AdamW")


def scaled_learning_rate(lr_cfg, total_batch):
    base = lr_cfg["base_batch_size"]
    return lr_cfg["learning_rate"] * (total_batch / base if base else 1.0)


def build_lr(lr_cfg, steps_per_epoch, epochs, total_batch):
    name = check_choice("Optimizer.lr.name", lr_cfg["name"], LR_SCHEDULES)
    peak = scaled_learning_rate(lr_cfg, total_batch)
    warmup_steps = int(round(lr_cfg["warmup_epoch"] * steps_per_epoch))
    if name == "Cosine":
        decay_steps = max(epochs * steps_per_epoch - warmup_steps, 1)
        schedule = paddle.optimizer.lr.CosineAnnealingDecay(peak, T_max=decay_steps, eta_min=lr_cfg["eta_min"])
    elif name == "Step":
        boundaries = list(range(lr_cfg["step_size"] * steps_per_epoch, epochs * steps_per_epoch,
                                lr_cfg["step_size"] * steps_per_epoch))
        values = [peak * lr_cfg["gamma"] ** i for i in range(len(boundaries) + 1)]
        schedule = paddle.optimizer.lr.PiecewiseDecay(boundaries, values)
    else:
        schedule = paddle.optimizer.lr.LambdaDecay(peak, _constant)
    if warmup_steps > 0:
        return paddle.optimizer.lr.LinearWarmup(schedule, warmup_steps, lr_cfg["warmup_start_lr"], peak)
    return schedule


def _constant(step):
    return 1.0


def _is_bn_or_bias(layer, param_name):
    return isinstance(layer, nn.layer.norm._BatchNormBase) or param_name == "bias"


def apply_lr_mult(model, lr_mult_list):
    """PaddleClas's lr_mult_list: one multiplier per group (stem, layer1..layer4)."""
    stages = model.stages()
    if len(lr_mult_list) != len(stages):
        raise ConfigError(f"Arch.lr_mult_list needs {len(stages)} values (stem, layer1..layer4), "
                         f"got {len(lr_mult_list)}: {lr_mult_list}")
    for stage, mult in zip(stages, lr_mult_list):
        for param in stage.parameters():
            param.optimize_attr["learning_rate"] = float(mult)


def build_optimizer(opt_cfg, model, schedule, multi_precision=False, clip_grad_norm=None):
    name = check_choice("Optimizer.name", opt_cfg["name"], OPTIMIZERS)
    reg = opt_cfg["regularizer"] or {"name": "L2", "coeff": 0.0}
    check_choice("Optimizer.regularizer.name", reg["name"], ("L2",))
    no_decay = set()
    if opt_cfg["no_weight_decay_on_bn_bias"]:
        for layer in model.sublayers(include_self=True):
            for pname, param in layer.named_parameters(include_sublayers=False):
                if _is_bn_or_bias(layer, pname):
                    param.regularizer = paddle.regularizer.L2Decay(0.0)  # Momentum's coupled L2
                    no_decay.add(param.name)
    params = [p for p in model.parameters() if not p.stop_gradient]
    clip = nn.ClipGradByGlobalNorm(clip_grad_norm) if clip_grad_norm else None
    if name == "AdamW":  # decoupled decay ignores param.regularizer: exclude by name instead
        return paddle.optimizer.AdamW(schedule, parameters=params, weight_decay=reg["coeff"], grad_clip=clip,
                                      apply_decay_param_fun=lambda param_name: param_name not in no_decay,
                                      multi_precision=multi_precision)
    return paddle.optimizer.Momentum(schedule, momentum=opt_cfg["momentum"], parameters=params,
                                     use_nesterov=opt_cfg["use_nesterov"], grad_clip=clip,
                                     weight_decay=paddle.regularizer.L2Decay(reg["coeff"]),
                                     multi_precision=multi_precision)
