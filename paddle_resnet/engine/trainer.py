"""Training: one Trainer runs the epochs of an Engine's model, with its checkpoints and resume.

Exits that a run may end with besides success: a ``UserError`` (exit code 1 from the tools), among them
``TrainingDiverged`` (a NaN/inf loss or weights: nothing non-finite is ever saved, the message names the
last good checkpoint) and an ``OutputError`` for a checkpoint that cannot be written; and ``Preempted``
(exit code 143, 128 + SIGTERM, what schedulers expect; 130 for Ctrl-C) when SIGTERM or SIGINT asks the run to
stop: it stops at the next step boundary, saves ``latest`` there (a resume continues from that exact step) and
ends its workers. A second Ctrl-C stops at once (KeyboardInterrupt), as usual.
"""
import contextlib
import math
import os
import signal
import threading
import time

import numpy as np
import paddle
import paddle.distributed as dist

from ..allocator import allocator_in_use
from ..config_schema import dump_config, thaw
from ..data import check_batches
from ..data.datasets import check_same_classes
from ..labels import CLASS_INDICES_FILE
from ..errors import ConfigError, InputError, OutputError, UserError, is_int, short_repr
from ..fileio import write_atomically
from ..models.arch import model_options
from .checkpoint import (check_training_state, copy_checkpoint, load_training_state, nonfinite_tensors,
                         optimizer_state_for_loading, optimizer_state_for_saving, rng_state, save_checkpoint,
                         set_rng_state)
from .curves import TrainingCurves
from .device import cpu_threads
from .ema import ModelEMA
from .logger import LOGGER, ScalarWriter, format_duration, progress_bar
from .losses import build_loss
from .metrics import Average, topk_correct
from .selection import MIN_EVAL_IMAGES_PER_CLASS, EarlyStop, is_new_best, small_eval_classes
from .optim import apply_lr_mult, build_lr, build_optimizer
from .step_choice import RunShape, training_net

PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM


class TrainingDiverged(UserError, RuntimeError):
    pass


class Preempted(SystemExit):
    """A stop signal ended the run at a step boundary, after ``latest`` was saved there. A SystemExit (code
    128 + the signal: 143 for SIGTERM, 130 for SIGINT), so that it passes ``except Exception`` and the tools
    exit with the code schedulers and shells expect."""

    def __init__(self, message, code=PREEMPTED_EXIT_CODE):
        super().__init__(code)
        self.message = message


BN_STATISTICS = ("._mean", "._variance")  # paddle.nn.BatchNorm2D buffer names


def sync_bn_statistics(state, mode):
    """Makes the BN running statistics in ``state`` (name -> tensor, changed in place) equal on every rank.

    Under DataParallel each rank updates them on its own shard, so without this the rank-0 checkpoint is
    not the model the other ranks evaluated, and eval.py on it would not print the in-training figures.
    """
    for name, tensor in state.items():
        if not name.endswith(BN_STATISTICS):
            continue
        if mode == "broadcast":
            dist.broadcast(tensor, src=0)
        else:
            dist.all_reduce(tensor)
            tensor.scale_(1.0 / dist.get_world_size())


def train_class_names(dataset, class_num, warn=True):
    """The Train set's class names, for the checkpoints; None (with one warning when ``warn``) when it has none."""
    names = dataset.class_names
    if names is not None and len(names) == class_num:
        return [str(name) for name in names]
    if warn:
        LOGGER.warning(f"no class names found for DataLoader.Train.dataset (no {CLASS_INDICES_FILE} beside "
                       f"its list or in its image_root): checkpoints and exports will name classes by index")
    return None


def cpu_amp_message(dtype, cpu_has_bf16):
    """Why ``AMP.use_amp`` trains in fp32 on the CPU, in one line."""
    if dtype != "bfloat16":
        return "AMP.use_amp needs a CUDA GPU; training in fp32 on the CPU"
    if not cpu_has_bf16:
        return ("AMP.use_amp with AMP.dtype bfloat16: this CPU has no bf16 instructions (avx512_bf16 or amx_bf16 "
                "in /proc/cpuinfo); training in fp32")
    return ("AMP.use_amp with AMP.dtype bfloat16 on the CPU: Paddle 3.3.1 has no CPU bf16 training step that is "
            "faster than fp32 (its autocast is off on the CPU, its static bf16 rewrite runs the forward "
            "convolutions in fp32: docs/benchmarks.md#bf16-training); training in fp32")


class Trainer:
    """The training loop and its state: freezing, loss, optimizer, AMP, EMA, checkpoints, resume.

    ``Engine.train()`` builds one from the validated config, the model, where the run happens (``RunContext``),
    the ``Evaluator`` and the two loaders (``eval_loader`` None without eval during training), and calls ``fit()``;
    ``train_epoch`` and ``end_epoch`` are its two steps.
    """

    def __init__(self, config, model, context, evaluator, train_loader, eval_loader=None):
        self.config, self.context, self.evaluator = config, context, evaluator
        settings = config["Global"]
        self.settings, self.is_main = settings, context.is_main
        self.accum = settings["accum_steps"]
        self.train_loader, self.eval_loader = train_loader, eval_loader
        if self.eval_loader is not None:
            check_same_classes(self.train_loader.dataset.class_names, self.eval_loader.dataset.class_names,
                               "DataLoader.Train.dataset", "DataLoader.Eval.dataset")
        for mode, loader in (("Train", self.train_loader), ("Eval", self.eval_loader)):
            if loader is not None:
                check_batches(loader, mode, context.world_size)
        batch = config["DataLoader"]["Train"]["sampler"]["batch_size"]
        total_batch = batch * context.world_size * self.accum
        self.steps_per_epoch = max(len(self.train_loader) // self.accum, 1)
        self.schedule = build_lr(config["Optimizer"]["lr"], self.steps_per_epoch, settings["epochs"], total_batch)
        metric = config["Metric"]["Train"]
        self.train_topk = tuple(metric[0]["TopkAcc"]["topk"]) if metric else ()
        self.model = model
        self.frozen_stages = self._freeze(self.config["Arch"]["freeze"])
        if self.config["Arch"]["lr_mult_list"]:
            apply_lr_mult(self.model, self.config["Arch"]["lr_mult_list"])
        self._setup_amp()
        self.optimizer = build_optimizer(self.config["Optimizer"], self.model, self.schedule,
                                         multi_precision=(self.amp_level == "O2"
                                                          or self.config["Optimizer"]["multi_precision"]),
                                         clip_grad_norm=settings["clip_grad_norm"])
        if self.amp_level == "O2":
            self.model, self.optimizer = paddle.amp.decorate(models=self.model, optimizers=self.optimizer,
                                                             level="O2", dtype=self.amp_dtype,
                                                             master_weight=True, save_dtype="float32")
        ema_cfg = self.config["EMA"]
        self.ema = ModelEMA(self.model, ema_cfg["decay"]) if ema_cfg["use_ema"] else None
        if self.context.world_size > 1 and settings["sync_bn"]:
            if self.context.device == "gpu":
                self.model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            else:
                LOGGER.warning("Global.sync_bn needs GPUs; using per-process BatchNorm on the CPU")
        run_shape = RunShape(config["Arch"]["name"], tuple(settings["image_shape"]), batch,
                             cpu_threads(settings["num_threads"]), self.steps_per_epoch * settings["epochs"],
                             context.world_size)
        self.net = training_net(self.model, settings["to_static"], context.device, run_shape)  # the model if dygraph
        if self.context.world_size > 1:
            self.net = paddle.DataParallel(self.net)
        self.loss_fn = self._criterion()
        self.start_epoch, self.global_step = 0, 0
        self.best = {"metric": settings["best_metric"], "value": None, "loss": None, "top1": -1.0, "epoch": -1}
        stop = settings["early_stop"]
        self.early_stop = EarlyStop(stop["metric"], stop["patience"], stop["min_delta"]) if stop else None
        self.stopping_early = False
        self.last_good = None  # (prefix, "epoch 2"): what a divergence or a failed save names
        self.resume_step = 0  # the first step of the first epoch: > 0 when resumed from a preempted run
        self.stop_signal = None  # set by the SIGTERM handler; the loop stops at the next step boundary
        if settings["checkpoints"]:
            self._resume(settings["checkpoints"])
        self.writer = ScalarWriter(self.context.output_dir, settings["use_visualdl"] and self.is_main)
        self.class_names = train_class_names(train_loader.dataset, config["Arch"]["class_num"], self.is_main)
        self.eval_seconds = 0.0  # how long the last eval took, for the run's ETA
        self.curves = (TrainingCurves(self.context.output_dir, self.start_epoch, self.global_step) if self.is_main
                       else None)
        if self.eval_loader is not None and self.is_main:
            self._warn_if_eval_set_is_small()

    def _warn_if_eval_set_is_small(self):
        dataset = self.eval_loader.dataset
        small, fewest = small_eval_classes(dataset.labels, self.config["Arch"]["class_num"])
        if small:
            LOGGER.warning(f"the Eval set has fewer than {MIN_EVAL_IMAGES_PER_CLASS} images in {small} of "
                           f"{self.config['Arch']['class_num']} classes (the fewest: {fewest}): epochs that differ "
                           f"little tie on it, and best is then the tied epoch of lower eval loss, then the later "
                           f"one. More Eval images separate them (split_dataset.py --val-ratio 0.2 or more)")

    def _freeze(self, freeze):
        """``"backbone"``: train the head only; N: freeze the stem and layer1..layerN. BN statistics freeze too."""
        if freeze is None:
            return []
        stages = self.model.stages()
        count = len(stages) if freeze == "backbone" else freeze + 1  # config_rules checked the range
        for stage in stages[:count]:
            for param in stage.parameters():
                param.stop_gradient = True
        return stages[:count]

    def _train_mode(self, model):
        model.train()
        for stage in self.frozen_stages:
            stage.eval()

    # ---------------------------------------------------------------- losses
    def _criterion(self):
        counts = np.bincount(self.train_loader.dataset.labels, minlength=self.config["Arch"]["class_num"])
        names = self.train_loader.dataset.class_names
        return build_loss(self.config["Loss"]["Train"], counts, names and [str(n) for n in names])

    def _setup_amp(self):
        amp = self.config["AMP"]
        self.amp_level, self.scaler = None, None
        self.amp_dtype = amp["dtype"]
        if not amp["use_amp"]:
            return
        if self.context.device != "gpu":
            LOGGER.warning(cpu_amp_message(self.amp_dtype, paddle.base.core.supports_bfloat16_fast_performance()))
            return
        self.amp_level = amp["level"]
        if self.amp_dtype == "float16":  # bfloat16 has fp32's range and needs no loss scaling
            self.scaler = paddle.amp.GradScaler(init_loss_scaling=amp["scale_loss"],
                                                use_dynamic_loss_scaling=amp["use_dynamic_loss_scaling"])

    def _autocast(self):
        if self.amp_level is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, level=self.amp_level, dtype=self.amp_dtype)

    # ------------------------------------------------------------ checkpoints
    def _state(self, epoch, partial=None):
        """``partial``: where in epoch ``epoch + 1`` a preempted run stopped ({"step", "loader"}), else None."""
        return {
            "model": self.model.state_dict(), "optimizer": optimizer_state_for_saving(self.optimizer, self.model),
            "lr": self.schedule.state_dict(), "epoch": epoch, "global_step": self.global_step,
            "best": dict(self.best), "ema": self.ema.state_dict() if self.ema else None,
            "scaler": self.scaler.state_dict() if self.scaler else None, "rng": rng_state(),
            "run": self._run_identity(), "partial": partial,
            "early_stop": self.early_stop.state_dict() if self.early_stop else None,
        }

    def _run_identity(self):
        """What a resume must match: the model's architecture and class count, and the optimizer."""
        arch = self.config["Arch"]
        return {"arch": arch["name"], "class_num": arch["class_num"], "model_options": model_options(arch),
                "optimizer": self.config["Optimizer"]["name"]}

    def run_info(self):
        """``<checkpoint>.run.json``: what eval, export and predict need besides the weights."""
        return {**self._run_identity(), "class_names": self.class_names}

    def _save(self, name, epoch, partial=None):
        prefix = os.path.join(self.context.output_dir, name)
        self._write_checkpoint(prefix, self.model.state_dict(), self._state(epoch, partial))
        return prefix

    def _copy_latest(self, name):
        """``name`` (``epoch_N``) as a copy of the ``latest`` just saved, the same state: not serialised twice."""
        prefix = os.path.join(self.context.output_dir, name)
        self._committing(prefix, lambda: copy_checkpoint(os.path.join(self.context.output_dir, "latest"), prefix))

    def _write_checkpoint(self, prefix, weights, state=None):
        self._committing(prefix, lambda: save_checkpoint(prefix, weights, state, self.run_info()))

    def _committing(self, prefix, write):
        """Runs ``write()``, with a failed write (a full disk, ``ulimit -f``) as one line naming the last good
        checkpoint; the unit is written atomically, so that one is still whole."""
        try:
            write()
        except OSError as error:  # also fileio's OutputError("cannot write <file>: <reason>"): keep the reason
            reason = getattr(error, "reason", None) or error.strerror or str(error)
            raise OutputError(f"cannot save checkpoint {prefix}: {reason}; {self._last_good_text()}") from None

    def _last_good_text(self):
        if self.last_good is None:
            return "no checkpoint of this run was saved before"
        prefix, when = self.last_good
        return f"the last good checkpoint is {prefix} ({when})"

    def _diverged(self, where, what):
        hint = " Lower Optimizer.lr.learning_rate or set Global.clip_grad_norm"
        if self.last_good is not None:
            hint += f", and resume with -o Global.checkpoints={self.last_good[0]}"
        return TrainingDiverged(f"training diverged at {where} ({what}); {self._last_good_text()}.{hint}")

    def _check_finite(self, where):
        """Refuses to go on (and so to save) with a NaN or inf in the weights, BN statistics, EMA or optimizer
        state: a checkpoint holding one would replace the last good one."""
        tensors = dict(self.model.state_dict())
        tensors.update({f"ema.{k}": v for k, v in (self.ema.state_dict() if self.ema else {}).items()})
        tensors.update({f"optimizer.{k}": v for k, v in self.optimizer.state_dict().items()})
        bad = nonfinite_tensors(tensors)
        if bad:
            raise self._diverged(where, f"{len(bad)} of {len(tensors)} weight and state tensors are not finite, "
                                        f"e.g. {bad[0]}")

    def _resume(self, prefix):
        state = load_training_state(prefix)
        path = f"{prefix}.pdstates"
        check_training_state(state, path)
        partial = state.get("partial")
        if partial is not None:
            step = partial.get("step")
            if not (is_int(step) and 0 <= step <= len(self.train_loader)):
                raise InputError(f"{path}: not a valid training state: partial.step must be an integer from 0 to "
                                 f"{len(self.train_loader)}, got {short_repr(step)}")
            self.train_loader.resume_at(partial.get("loader"), f"{path}: not a valid training state")
            self.resume_step = step
        self._check_resumable(state, prefix)
        self.model.set_state_dict(state["model"])
        self.optimizer.set_state_dict(optimizer_state_for_loading(state["optimizer"], self.model))
        self.schedule.set_state_dict(state["lr"])
        if self.ema and state.get("ema"):
            self.ema.set_state_dict(state["ema"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], path)
        self.start_epoch, self.global_step = state["epoch"] + 1, state["global_step"]
        self._resume_best(state["best"], prefix)
        if self.early_stop:
            self.early_stop.set_state_dict(state.get("early_stop"))
        where = f", step {self.resume_step} of {len(self.train_loader)}" if partial is not None else ""
        self.last_good = (prefix, f"epoch {self.start_epoch + (partial is not None)}{where}")
        LOGGER.info(f"resumed from {prefix}: next epoch {self.start_epoch + 1}{where.replace(', step', ' from step')}, "
                    f"global step {self.global_step}")

    def _resume_best(self, saved, prefix):
        """The saved best, when it was chosen by the same metric (a state saved before best_metric existed was
        by top1); by another, the best is chosen anew from the next eval on."""
        saved = dict(saved)
        if "metric" not in saved:
            saved.update(metric="top1", value=saved["top1"] if saved["epoch"] >= 0 else None, loss=None)
        if saved["metric"] == self.best["metric"]:
            self.best = saved
        elif saved["epoch"] >= 0:
            LOGGER.warning(f"{prefix} kept its best by {saved['metric']}, this run by {self.best['metric']} "
                           f"(Global.best_metric): best is chosen anew from the next eval on")

    def _check_resumable(self, state, prefix):
        saved, ours = state.get("run"), self._run_identity()
        if saved is None:  # written before checkpoints recorded their run
            saved = {"arch": (state.get("arch") or {}).get("name"), "class_num": (state.get("arch") or {}).get("class_num")}
        def describe(run):
            options = ", ".join(f"{k}={v}" for k, v in sorted((run.get("model_options") or {}).items()))
            return (f"{run.get('arch')} with {run.get('class_num')} classes{f' ({options})' if options else ''}"
                    f"{', ' + run['optimizer'] if run.get('optimizer') else ''}")
        if any(key in saved and saved[key] != ours[key] for key in ours):
            raise ConfigError(f"cannot resume from {prefix}: it was trained as {describe(saved)}, the config builds "
                              f"{describe(ours)}; resume with the config it was trained with (its config.yaml), "
                              f"or start from its weights with -o Global.pretrained_model={prefix}")
        finished, epochs = state["epoch"] + 1, self.settings["epochs"]
        if finished >= epochs:
            raise ConfigError(f"Global.epochs is {epochs} but {prefix} has already finished epoch {finished}: "
                              f"nothing left to train; set Global.epochs above {finished} to train on")

    # ------------------------------------------------------------ loop
    def fit(self):
        settings = self.settings
        if self.is_main:
            os.makedirs(self.context.output_dir, exist_ok=True)
            write_atomically(os.path.join(self.context.output_dir, "config.yaml"),
                             lambda tmp: dump_config(self.config, tmp))
            self._log_config()
        with self._stop_on_signals():
            for epoch in range(self.start_epoch, settings["epochs"]):
                self.end_epoch(epoch, self.train_epoch(epoch))
                if self.stopping_early:
                    break
                if epoch + 1 < settings["epochs"] and self._stop_requested():
                    self._preempted(os.path.join(self.context.output_dir, "latest"), f"epoch {epoch + 1}")
        if self.context.world_size > 1:
            self._check_ranks_in_sync()
        self.writer.close()
        return {"best_top1": self.best["top1"], "best_epoch": self.best["epoch"] + 1,
                "best_metric": self.best["metric"], "best_value": self.best["value"],
                "stopped_early": self.stopping_early, "output_dir": self.context.output_dir}

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """SIGTERM, and SIGINT unless it is ignored (a background job's), set ``stop_signal``; the loop stops at
        the next step boundary. A second SIGTERM changes nothing; a second SIGINT is Python's KeyboardInterrupt
        (stop now). Only the main thread can take signals: elsewhere they keep their default."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        def request_stop(signum, _frame):
            self.stop_signal = signal.Signals(signum).name
            if signum == signal.SIGINT:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        signums = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is signal.default_int_handler
                                      else [])
        previous = {signum: signal.signal(signum, request_stop) for signum in signums}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _stop_requested(self):
        """Whether any rank got a stop signal: all ranks agree (one all-reduce of a flag per step under
        paddle.distributed), so that none waits in a collective for a rank that stopped."""
        stop = self.stop_signal is not None
        if self.context.world_size > 1:
            flag = paddle.to_tensor(int(stop), dtype="int32")
            dist.all_reduce(flag)
            stop = flag.item() > 0
            if stop and self.stop_signal is None:  # another rank got it
                self.stop_signal = "SIGTERM"
        return stop

    def _preempted(self, prefix, where):
        """Logs the preemption (rank 0, which saved ``prefix``) and raises Preempted on every rank."""
        message = (f"preempted by {self.stop_signal}: saved {prefix} ({where}); resume with "
                   f"-o Global.checkpoints={prefix}")
        if self.is_main:
            LOGGER.warning(message)
        raise Preempted(message, 128 + signal.Signals[self.stop_signal])

    def _log_config(self):
        """The saved config's path and the overrides; the whole config goes to train.log only (debug)."""
        overrides = " ".join(f"-o {item}" for item in self.context.overrides) or "none"
        LOGGER.info(f"config: {os.path.join(self.context.output_dir, 'config.yaml')} (overrides: {overrides})")
        if self.context.device == "cpu":
            LOGGER.info(f"memory allocator: {allocator_in_use()}")
        LOGGER.debug("effective config:\n" + _format_config(self.config))

    def _check_ranks_in_sync(self):
        """Compares per-tensor checksums across ranks: DataParallel must keep the weights identical, and
        Global.dist_bn the BN statistics (left out with dist_bn none: each rank keeps its shard's)."""
        compare_bn = self.settings["dist_bn"] != "none"
        checksum = paddle.stack([t.detach().astype("float64").sum() for name, t in self.model.state_dict().items()
                                 if compare_bn or not name.endswith(BN_STATISTICS)])
        gathered = []
        dist.all_gather(gathered, checksum)
        spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
        if spread == 0.0:
            LOGGER.info(f"weights identical on all {len(gathered)} ranks")
        else:
            LOGGER.warning(f"weights differ across ranks (largest checksum difference {spread:g})")

    def train_epoch(self, epoch):
        """One pass over the Train set; returns the epoch's summary (loss, top1, skipped, ips)."""
        settings, loader = self.settings, self.train_loader
        start_step, self.resume_step = self.resume_step, 0
        loader.set_epoch(epoch)
        self._train_mode(self.net)
        loss_avg = Average()
        metric_avgs = {f"top{k}": Average() for k in self.train_topk}
        skipped = 0
        speed = Speed(settings["speed_warmup_steps"])
        first_step = self.global_step
        steps = len(loader)
        bar = progress_bar(steps, f"epoch {epoch + 1}/{settings['epochs']}", self.is_main)
        tic = time.perf_counter()
        batches = iter(loader)
        with contextlib.closing(batches):  # ends the DataLoader workers however the loop ends
            for step, (images, target, n_skipped) in enumerate(batches, start=start_step):
                skipped += n_skipped
                batch = images.shape[0]
                if batch == 0:
                    continue
                self._train_step(epoch, step, steps, images, target, batch, loss_avg, metric_avgs)
                now = time.perf_counter()
                speed.update(step - start_step, batch * self.context.world_size, now - tic)
                tic = now
                bar.update(1)
                if self.is_main and ((step + 1) % settings["print_batch_step"] == 0 or step + 1 == steps):
                    self._log_step(epoch, step, steps, loss_avg, metric_avgs, speed)
                if self._is_sync_step(step, steps) and self._stop_requested():
                    self._preempt(epoch, step + 1, steps)
        bar.close()
        if self.global_step == first_step and start_step == 0:
            raise InputError(f"epoch {epoch + 1} made no optimizer step ({steps} batches, {skipped} images skipped); "
                             f"the model would be saved untrained")
        if skipped:
            LOGGER.warning(f"epoch {epoch + 1}: skipped {skipped} unreadable image(s); see the warnings above")
        return {"loss": loss_avg.value, "metrics": metric_avgs, "skipped": skipped,
                "ips": speed.images_per_second}

    def _train_step(self, epoch, step, steps, images, target, batch, loss_avg, metric_avgs):
        loss, logits = self._forward_backward(images, target, step, steps)
        loss_value = float(loss)
        if not math.isfinite(loss_value):
            raise self._diverged(f"epoch {epoch + 1}, step {step + 1}", f"loss {loss_value}")
        loss_avg.update(loss_value, batch)
        if self.curves is not None:
            self.curves.add_step(self.global_step, epoch + (step + 1) / steps, loss_value, self.optimizer.get_lr())
        if metric_avgs:
            labels = target[0] if isinstance(target, tuple) else target
            for k, hits in topk_correct(logits, labels, self.train_topk).items():
                metric_avgs[f"top{k}"].update(hits / batch, batch)

    def _log_step(self, epoch, step, steps, loss_avg, metric_avgs, speed):
        settings, ips, lr = self.settings, speed.images_per_second, self.optimizer.get_lr()
        LOGGER.info(f"epoch {epoch + 1}/{settings['epochs']} step {step + 1}/{steps} loss {loss_avg.value:.4f} "
                    f"lr {lr:.6f}{_format_metrics(metric_avgs)} ips {ips:.1f} img/s "
                    f"{self._eta(speed.seconds_per_step, epoch, step, steps)}")
        self.writer.add({"train/loss": loss_avg.value, "train/lr": lr, "train/ips": ips}
                        | {f"train/{name}": avg.value for name, avg in metric_avgs.items()}, self.global_step)

    def _preempt(self, epoch, steps_done, steps):
        """At a step boundary after a stop signal: rank 0 saves ``latest`` where the epoch stands (a resume
        continues from the next step, skipping the batches seen), then every rank raises Preempted."""
        prefix, where = os.path.join(self.context.output_dir, "latest"), f"epoch {epoch + 1}, step {steps_done} of {steps}"
        if self.is_main:
            self._check_finite(where)
            self._save("latest", epoch - 1, partial={"step": steps_done, "loader": self.train_loader.position()})
        self._preempted(prefix, where)

    def _eta(self, seconds_per_step, epoch, step, steps):
        """``eta 0:01:10 epoch, 0:25:40 run``: the run's adds the later epochs and their evals (as long as
        the last eval took; until one ran, evals are not counted)."""
        settings = self.settings
        epoch_left = (steps - step - 1) * seconds_per_step
        later_epochs = settings["epochs"] - epoch - 1
        evals_left = 0
        if self.eval_loader is not None:
            evals_left = sum(1 for done in range(epoch + 1, settings["epochs"] + 1) if self._evaluates_after(done))
        run_left = epoch_left + later_epochs * steps * seconds_per_step + evals_left * self.eval_seconds
        return f"eta {format_duration(epoch_left)} epoch, {format_duration(run_left)} run"

    def _evaluates_after(self, done):
        """Whether the epoch numbered ``done`` (1-based) ends with an eval: every Global.eval_interval, and the last."""
        return done % self.settings["eval_interval"] == 0 or done == self.settings["epochs"]

    def _is_sync_step(self, step, steps):
        """Whether ``step`` ends with an optimizer step (every Global.accum_steps, and the epoch's last)."""
        return (step + 1) % self.accum == 0 or step + 1 == steps

    def _forward_backward(self, images, target, step, steps):
        sync_step = self._is_sync_step(step, steps)
        no_sync = (self.net.no_sync() if isinstance(self.net, paddle.DataParallel) and not sync_step
                   else contextlib.nullcontext())
        with no_sync:
            with self._autocast():
                logits = self.net(images)
                loss = self.loss_fn(logits.astype("float32"), target)
            scaled = loss / self.accum
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        if sync_step:
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.clear_grad()
            self.schedule.step()
            self.global_step += 1
            if self.ema:
                self.ema.update(self.model)
        return loss, logits

    def end_epoch(self, epoch, summary):
        """Every rank evaluates its share of the Eval set; rank 0 logs, keeps the best and saves."""
        settings, done = self.settings, epoch + 1
        if self.context.world_size > 1 and settings["dist_bn"] != "none":
            sync_bn_statistics(self.model.state_dict(), settings["dist_bn"])
            if self.ema:
                sync_bn_statistics(self.ema.state_dict(), settings["dist_bn"])
        self._check_finite(f"epoch {done}")  # every rank, so that all stop together
        eval_result = None
        if self.eval_loader is not None and self._evaluates_after(done):
            started = time.perf_counter()
            eval_result = self.evaluate_and_keep_best(epoch)
            self.eval_seconds = time.perf_counter() - started
        if not self.is_main:
            return
        top1 = summary["metrics"]["top1"].value if "top1" in summary["metrics"] else None
        self.curves.add(done, summary["loss"], top1, self.optimizer.get_lr(), eval_result)
        LOGGER.info(f"epoch {done}/{settings['epochs']} done: loss {summary['loss']:.4f}{_format_metrics(summary['metrics'])}"
                    f" ips {summary['ips']:.1f} img/s, skipped images {summary['skipped']}")
        self.last_good = (self._save("latest", epoch), f"epoch {done}")
        if settings["save_interval"] and done % settings["save_interval"] == 0:
            self._copy_latest(f"epoch_{done}")

    def evaluate_and_keep_best(self, epoch):
        restore = None
        if self.ema:  # evaluate (and keep as best) the EMA weights
            restore = {k: v.clone() for k, v in self.model.state_dict().items()}
            self.model.set_state_dict(self.ema.state_dict())
        try:
            result = self.evaluator.evaluate(self.eval_loader, self.model)
            if not math.isfinite(result["loss"]):  # every rank: the sums were all-reduced
                raise self._diverged(f"epoch {epoch + 1}", f"eval loss {result['loss']}")
            metric = self.best["metric"]
            if is_new_best(metric, result, self.best):
                self.best = {"metric": metric, "value": result[metric], "loss": result["loss"],
                             "top1": result["top1"], "epoch": epoch}
                if self.is_main:
                    self._write_checkpoint(os.path.join(self.context.output_dir, "best"), self.model.state_dict())
        finally:
            if restore is not None:
                self.model.set_state_dict(restore)
        topk = " ".join(f"top{k} {result[f'top{k}']:.4f}" for k in self.evaluator.topk)
        extra = f" {metric} {result[metric]:.4f}" if metric not in ("loss",) and not metric.startswith("top") else ""
        LOGGER.info(f"eval epoch {epoch + 1}: {topk} loss {result['loss']:.4f}{extra} over {result['samples']} "
                    f"images; best {metric} {self.best['value']:.4f} (epoch {self.best['epoch'] + 1})")
        self._count_for_early_stop(epoch, result)
        self.writer.add({f"eval/top{k}": result[f"top{k}"] for k in self.evaluator.topk} | {"eval/loss": result["loss"]},
                        self.global_step)
        return result


    def _count_for_early_stop(self, epoch, result):
        """Every rank counts (the eval figures are all-reduced), so that all stop after the same epoch."""
        if self.early_stop is None or not self.early_stop.update(epoch, result):
            return
        self.stopping_early = epoch + 1 < self.settings["epochs"]
        if self.stopping_early:
            LOGGER.info(f"early stop: {self.early_stop.describe()}; stopping after epoch {epoch + 1} of "
                        f"{self.settings['epochs']}")


class Speed:
    """Images per second and seconds per step, leaving out the first ``warmup_steps`` steps (compilation and
    cache warm-up) once later steps exist; an epoch shorter than that is measured over all its steps."""

    def __init__(self, warmup_steps):
        self.warmup_steps = warmup_steps
        self.timed = [0, 0, 0.0]  # steps, images, seconds after the warm-up
        self.all = [0, 0, 0.0]

    def update(self, step, images, seconds):
        for totals in (self.all, self.timed) if step >= self.warmup_steps else (self.all,):
            totals[0] += 1
            totals[1] += images
            totals[2] += seconds

    @property
    def _totals(self):
        return self.timed if self.timed[2] > 0 else self.all

    @property
    def images_per_second(self):
        steps, images, seconds = self._totals
        return images / seconds if seconds > 0 else 0.0

    @property
    def seconds_per_step(self):
        steps, images, seconds = self._totals
        return seconds / steps if steps else 0.0


def _format_metrics(averages):
    """`` top1 0.9120 top5 0.9950`` for Metric.Train's accuracies ("" when it lists none)."""
    return "".join(f" {name} {avg.value:.4f}" for name, avg in averages.items())


def _format_config(config):
    import yaml
    return yaml.safe_dump(thaw(config), sort_keys=False, default_flow_style=None).rstrip()
