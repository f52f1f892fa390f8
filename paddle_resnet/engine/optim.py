"""Learning-rate schedules and the optimizer, from the Optimizer section.

Schedules follow PaddleClas 2.6's definitions (ppcls/optimizer/learning_rate.py; ``CosineWarmup`` is
PaddleClas 2.1's): the same Paddle schedulers with the same arguments, a linear warm-up of
``warmup_epoch`` epochs from ``warmup_start_lr`` in front, and ``by_epoch`` to change the rate once per
epoch instead of once per optimizer step. Every argument is checked by ``check_lr`` when the config loads.
"""
import logging

import paddle
import paddle.nn as nn

from ..errors import ConfigError, check_choice, is_int, is_number

logger = logging.getLogger("paddle_resnet")

REQUIRED = object()
# Each schedule's own arguments and their defaults (PaddleClas's); the keys below are common to all.
LR_ARGUMENTS = {
    "Cosine": {"eta_min": 0.0},
    "CosineWarmup": {"eta_min": 0.0},
    "Step": {"step_size": REQUIRED, "gamma": 0.1},
    "Piecewise": {"decay_epochs": None, "values": None},
    "MultiStepDecay": {"milestones": REQUIRED, "gamma": 0.1},
    "Linear": {"end_lr": 0.0, "power": 1.0, "cycle": False},
    "Constant": {},
}
COMMON_LR_KEYS = ("name", "learning_rate", "base_batch_size", "warmup_epoch", "warmup_start_lr", "by_epoch")
LR_SCHEDULES = tuple(LR_ARGUMENTS)
OPTIMIZERS = ("Momentum", "AdamW")
PIECEWISE_EVERY = 30  # PaddleClas: Piecewise with learning_rate set decays 10x every 30 epochs


def _increasing(values, what, key):
    ok = isinstance(values, list) and values and all(is_int(v) for v in values)
    if not ok or any(v <= 0 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"Optimizer.lr.{key} must be a non-empty list of increasing integers > 0 ({what}), "
                          f"got {values!r}")


def check_lr(lr_cfg):
    """The merged ``Optimizer.lr`` section with the schedule's defaults filled in (a new dict); ConfigError for a
    key the schedule does not take, a missing one or a value it cannot use."""
    lr_cfg = dict(lr_cfg)
    name = check_choice("Optimizer.lr.name", lr_cfg["name"], LR_SCHEDULES)
    own = LR_ARGUMENTS[name]
    for key, value in list(lr_cfg.items()):
        if key not in COMMON_LR_KEYS and key not in own:
            owners = ", ".join(other for other, arguments in LR_ARGUMENTS.items() if key in arguments)
            raise ConfigError(f"Optimizer.lr.{key} is not an argument of the {name} schedule (it is one of "
                              f"{owners}); {name} takes {', '.join(COMMON_LR_KEYS + tuple(own))}")
    for key, default in own.items():
        if lr_cfg.get(key) is None:
            if default is REQUIRED:
                raise ConfigError(f"missing required key Optimizer.lr.{key} for the {name} schedule")
            lr_cfg[key] = default
    if lr_cfg["warmup_epoch"] is None:
        lr_cfg["warmup_epoch"] = 5.0 if name == "CosineWarmup" else 0.0  # PaddleClas 2.1's / 2.6's default
    if not (is_number(lr_cfg["warmup_epoch"], finite=True) and lr_cfg["warmup_epoch"] >= 0):
        raise ConfigError(f"Optimizer.lr.warmup_epoch must be a number >= 0, got {lr_cfg['warmup_epoch']!r}")
    rate = lr_cfg["learning_rate"]
    if rate is None and name != "Piecewise":
        raise ConfigError(f"missing required key Optimizer.lr.learning_rate for the {name} schedule")
    if rate is not None and not (is_number(rate, finite=True) and rate > 0):
        raise ConfigError(f"Optimizer.lr.learning_rate must be a number > 0, got {rate!r}")
    if not isinstance(lr_cfg["by_epoch"], bool):
        raise ConfigError(f"Optimizer.lr.by_epoch must be true or false, got {lr_cfg['by_epoch']!r}")
    if lr_cfg["by_epoch"] and not float(lr_cfg["warmup_epoch"]).is_integer():
        raise ConfigError(f"Optimizer.lr.warmup_epoch must be a whole number of epochs with by_epoch: true, "
                          f"got {lr_cfg['warmup_epoch']!r}")
    _check_schedule_arguments(name, lr_cfg)
    return lr_cfg


def _check_schedule_arguments(name, lr_cfg):
    eta_min, gamma = lr_cfg.get("eta_min"), lr_cfg.get("gamma")
    if name in ("Cosine", "CosineWarmup") and not (is_number(eta_min, finite=True) and eta_min >= 0):
        raise ConfigError(f"Optimizer.lr.eta_min must be a number >= 0, got {lr_cfg['eta_min']!r}")
    if name in ("Step", "MultiStepDecay") and not (is_number(gamma, finite=True) and gamma > 0):
        raise ConfigError(f"Optimizer.lr.gamma must be a number > 0, got {lr_cfg['gamma']!r}")
    if name == "Step":
        step_size, whole = lr_cfg["step_size"], lr_cfg["by_epoch"]
        if not (is_int(step_size) if whole else is_number(step_size, finite=True)) or step_size <= 0:
            kind = "an integer" if whole else "a number"
            raise ConfigError(f"Optimizer.lr.step_size must be {kind} of epochs > 0, got {step_size!r}")
    if name == "MultiStepDecay":
        _increasing(lr_cfg["milestones"], "epochs", "milestones")
    if name == "Linear":
        if not (is_number(lr_cfg["end_lr"], finite=True) and lr_cfg["end_lr"] >= 0):
            raise ConfigError(f"Optimizer.lr.end_lr must be a number >= 0, got {lr_cfg['end_lr']!r}")
        if not (is_number(lr_cfg["power"], finite=True) and lr_cfg["power"] > 0):
            raise ConfigError(f"Optimizer.lr.power must be a number > 0, got {lr_cfg['power']!r}")
        if not isinstance(lr_cfg["cycle"], bool):
            raise ConfigError(f"Optimizer.lr.cycle must be true or false, got {lr_cfg['cycle']!r}")
    if name == "Piecewise":
        _check_piecewise(lr_cfg)


def _check_piecewise(lr_cfg):
    epochs, values = lr_cfg["decay_epochs"], lr_cfg["values"]
    if lr_cfg["learning_rate"] is not None:
        return  # PaddleClas then replaces decay_epochs and values (see piecewise_boundaries)
    if epochs is None or values is None:
        raise ConfigError("Optimizer.lr: Piecewise needs decay_epochs and values (or learning_rate, which "
                          "decays 10x every 30 epochs as in PaddleClas)")
    _increasing(epochs, "epochs", "decay_epochs")
    if not (isinstance(values, list) and all(is_number(v, finite=True) and v >= 0 for v in values)):
        raise ConfigError(f"Optimizer.lr.values must be a list of learning rates >= 0, got {values!r}")
    if len(values) != len(epochs) + 1:
        raise ConfigError(f"Optimizer.lr.values must have one more entry than decay_epochs (a rate before "
                          f"the first and after each boundary): {len(epochs)} decay_epochs {epochs} need "
                          f"{len(epochs) + 1} values, got {len(values)} {values}")


def piecewise_boundaries(lr_cfg, epochs):
    """(decay_epochs, values) of a Piecewise schedule. As in PaddleClas, ``learning_rate`` replaces both
    with a 10x decay every 30 epochs (one warning; a run shorter than 30 epochs keeps learning_rate)."""
    rate = lr_cfg["learning_rate"]
    if rate is None:
        return list(lr_cfg["decay_epochs"]), [float(v) for v in lr_cfg["values"]]
    decay_epochs = list(range(0, epochs, PIECEWISE_EVERY))
    values = [rate * 0.1 ** i for i in range(len(decay_epochs))]
    decay_epochs, values = ([epochs], [values[0]] * 2) if len(decay_epochs) == 1 else (decay_epochs[1:], values)
    given = (lr_cfg["decay_epochs"], lr_cfg["values"])
    if given != (decay_epochs, values):
        logger.warning(f"Optimizer.lr: Piecewise with learning_rate {rate} decays 10x every {PIECEWISE_EVERY} "
                       f"epochs, as in PaddleClas: decay_epochs {decay_epochs} and values {values} are used "
                       f"(the config's {given[0]} and {given[1]} are not); remove learning_rate to use them")
    return decay_epochs, values


def _batch_scale(lr_cfg, total_batch):
    """Goyal et al.'s linear scaling: learning rates are for a total batch of base_batch_size (when set)."""
    base = lr_cfg["base_batch_size"]
    return total_batch / base if base else 1.0


class EpochSchedule(paddle.optimizer.lr.LRScheduler):
    """``by_epoch``: the trainer steps every optimizer step; ``inner`` (built in epochs) moves once per epoch."""

    def __init__(self, inner, steps_per_epoch):
        self.inner, self.steps_per_epoch = inner, steps_per_epoch
        super().__init__(inner.last_lr)

    def get_lr(self):
        while self.inner.last_epoch < self.last_epoch // self.steps_per_epoch:
            self.inner.step()
        return self.inner.last_lr

    def state_dict(self):
        return {**super().state_dict(), "inner": self.inner.state_dict()}

    def set_state_dict(self, state_dict):
        state = dict(state_dict)
        self.inner.set_state_dict(state.pop("inner"))
        super().set_state_dict(state)


def build_lr(lr_cfg, steps_per_epoch, epochs, total_batch):
    """The schedule, stepped once per optimizer step (``by_epoch``: its rate changes once per epoch)."""
    name = check_choice("Optimizer.lr.name", lr_cfg["name"], LR_SCHEDULES)
    units = 1 if lr_cfg["by_epoch"] else steps_per_epoch  # schedule steps per epoch
    warmup_epoch = float(lr_cfg["warmup_epoch"])
    if warmup_epoch > epochs:
        logger.warning(f"Optimizer.lr.warmup_epoch {warmup_epoch:g} is more than Global.epochs {epochs}: "
                       f"warming up for all {epochs} epochs (as PaddleClas does)")
        warmup_epoch = float(epochs)
    scale = _batch_scale(lr_cfg, total_batch)
    warmup_steps = int(round(warmup_epoch * units))
    decay_steps = epochs * units - warmup_steps
    if name == "Piecewise":
        decay_epochs, values = piecewise_boundaries(lr_cfg, epochs)
        values = [v * scale for v in values]
        peak = values[0]
        schedule = paddle.optimizer.lr.PiecewiseDecay([e * units for e in decay_epochs], values)
    else:
        peak = lr_cfg["learning_rate"] * scale
        schedule = _decay(name, lr_cfg, peak, units, decay_steps)
    if warmup_steps > 0:
        schedule = paddle.optimizer.lr.LinearWarmup(schedule, warmup_steps, lr_cfg["warmup_start_lr"], peak)
    return EpochSchedule(schedule, steps_per_epoch) if lr_cfg["by_epoch"] else schedule


def _decay(name, lr_cfg, peak, units, decay_steps):
    lr = paddle.optimizer.lr
    if name in ("Cosine", "CosineWarmup"):
        if decay_steps <= 0:
            return lr.LambdaDecay(peak, _constant)
        return lr.CosineAnnealingDecay(peak, T_max=decay_steps, eta_min=lr_cfg["eta_min"])
    if name == "Step":
        step_size = int(lr_cfg["step_size"] * units)
        if step_size < 1:
            raise ConfigError(f"Optimizer.lr.step_size {lr_cfg['step_size']} epochs is less than one step "
                              f"({units} steps per epoch)")
        return lr.StepDecay(peak, step_size=step_size, gamma=lr_cfg["gamma"])
    if name == "MultiStepDecay":
        return lr.MultiStepDecay(peak, milestones=[m * units for m in lr_cfg["milestones"]], gamma=lr_cfg["gamma"])
    if name == "Linear" and decay_steps > 0:
        return lr.PolynomialDecay(peak, decay_steps, end_lr=lr_cfg["end_lr"], power=lr_cfg["power"],
                                  cycle=lr_cfg["cycle"])
    return lr.LambdaDecay(peak, _constant)


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
