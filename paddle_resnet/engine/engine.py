"""One engine for train, eval and export, driven by a validated config (see paddle_resnet.config)."""
import contextlib
import math
import os
import random
import time

import numpy as np
import paddle
import paddle.distributed as dist
import paddle.nn.functional as F

from ..config import dump_config
from ..models import build_model
from .checkpoint import atomic_save, load_training_state, rng_state, save_checkpoint, set_rng_state
from .device import select_device
from .ema import ModelEMA
from .logger import LOGGER, ScalarWriter, progress_bar, setup_logging
from .metrics import Average, topk_correct
from .optim import apply_lr_mult, build_lr, build_optimizer

AMP_LEVELS = ("O1", "O2")


class TrainingDiverged(RuntimeError):
    pass


def _single_entry(items, section, allowed):
    """PaddleClas lists such as ``Loss.Train: [{CELoss: {...}}]`` -> ("CELoss", {...})."""
    if len(items) != 1 or not isinstance(items[0], dict) or len(items[0]) != 1:
        raise ValueError(f"{section} must be a list with one entry such as [{{{allowed}: {{...}}}}], got {items!r}")
    (name, options), = items[0].items()
    if name != allowed:
        raise ValueError(f"{section}: {name!r} is not supported; use {allowed}")
    return options or {}


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


class Engine:
    def __init__(self, config, mode="train"):
        self.config, self.mode = config, mode
        g = config["Global"]
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.output_dir = g["output_dir"]
        setup_logging(self.output_dir if mode == "train" else None, self.rank)
        if mode in ("train", "eval"):
            from ..data import check_data_paths  # before the model is built: a missing folder fails fast
            if mode == "train":
                check_data_paths(config["DataLoader"]["Train"], "Train")
            if mode == "eval" or g["eval_during_train"]:
                check_data_paths(config["DataLoader"]["Eval"], "Eval")
        if mode in ("eval", "export") and not g["pretrained_model"]:
            raise ValueError(f"Global.pretrained_model is not set: {mode} needs trained weights, "
                             f"e.g. -o Global.pretrained_model={os.path.join(self.output_dir, 'best')}")
        self.device = select_device(g["device"], g["num_threads"])
        if self.world_size > 1:
            dist.init_parallel_env()
        _seed_everything(g["seed"])  # the same initial weights on every rank
        self.model = self._build_model()
        if g["pretrained_model"]:
            self._load_pretrained(g["pretrained_model"])
        self.frozen_stages = self._freeze(config["Arch"]["freeze"])
        if config["Arch"]["lr_mult_list"]:
            apply_lr_mult(self.model, config["Arch"]["lr_mult_list"])
        self.topk = tuple(_single_entry(config["Metric"]["Eval"], "Metric.Eval", "TopkAcc").get("topk", [1, 5]))
        _seed_everything(g["seed"] + self.rank)  # per-rank dropout and mixup draws

    # ---------------------------------------------------------------- model
    def _model_options(self):
        arch = self.config["Arch"]
        return {k: v for k, v in arch.items() if k not in ("name", "class_num", "freeze", "lr_mult_list")
                and v is not None}

    def _build_model(self, **overrides):
        arch = self.config["Arch"]
        return build_model(arch["name"], num_classes=arch["class_num"], **{**self._model_options(), **overrides})

    def _load_pretrained(self, path):
        from ..weights import load_pretrained
        # Training may swap the head for a new class count; eval and export must not.
        report = load_pretrained(self.model, path, reinit_head=self.mode == "train")
        LOGGER.info(f"loaded pretrained weights: {report}")

    def _freeze(self, freeze):
        """``"backbone"``: train the head only; N: freeze the stem and layer1..layerN. BN statistics freeze too."""
        if freeze is None:
            return []
        stages = self.model.stages()
        count = len(stages) if freeze == "backbone" else (int(freeze) + 1 if isinstance(freeze, int) else None)
        if count is None or not 0 < count <= len(stages):
            raise ValueError(f"Arch.freeze must be 'backbone' or a stage number 0..{len(stages) - 1} "
                             f"(0 = stem only), got {freeze!r}")
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
        opts = _single_entry(self.config["Loss"]["Train"], "Loss.Train", "CELoss")
        epsilon = float(opts.get("epsilon", 0.0))

        def loss_fn(logits, target):
            if isinstance(target, tuple):  # mixup: (labels_a, labels_b, lam)
                labels_a, labels_b, lam = target
                return (lam * F.cross_entropy(logits, labels_a, label_smoothing=epsilon)
                        + (1 - lam) * F.cross_entropy(logits, labels_b, label_smoothing=epsilon))
            return F.cross_entropy(logits, target, label_smoothing=epsilon)
        return loss_fn

    # ---------------------------------------------------------------- eval
    def build_loader(self, mode, distributed=None):
        from ..data import build_dataloader
        return build_dataloader(self.config["DataLoader"][mode], mode, seed=self.config["Global"]["seed"],
                                class_num=self.config["Arch"]["class_num"], distributed=distributed)

    @paddle.no_grad()
    def evaluate(self, loader=None, model=None):
        """Top-k accuracy and mean loss over the whole Eval set. Under paddle.distributed each rank reads
        its own unpadded share and the sums are all-reduced, so every sample counts exactly once."""
        loader = loader if loader is not None else self.build_loader("Eval")
        model = model if model is not None else self.model
        was_training = model.training
        model.eval()
        loss_sum, seen, skipped = 0.0, 0, 0
        correct = {k: 0 for k in self.topk}
        for images, labels, n_skipped in loader:
            skipped += n_skipped
            logits = model(images).astype("float32")
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            for k, n in topk_correct(logits, labels, self.topk).items():
                correct[k] += n
            seen += labels.shape[0]
        model.train(was_training)
        totals = paddle.to_tensor([loss_sum, seen, skipped] + [correct[k] for k in self.topk], dtype="float64")
        if self.world_size > 1:
            dist.all_reduce(totals)
        loss_sum, seen, skipped, *hits = totals.tolist()
        result = {f"top{k}": n / max(seen, 1) for k, n in zip(self.topk, hits)}
        result.update(loss=loss_sum / max(seen, 1), samples=int(seen), skipped=int(skipped))
        return result

    # ---------------------------------------------------------------- export
    def export(self, save_dir=None, softmax=True, onnx=False):
        from ..data import label_list_for
        from ..deploy import export_inference
        g = self.config["Global"]
        eval_dataset = self.config["DataLoader"]["Eval"]["dataset"]
        model = self.model
        if model.data_format == "NHWC":
            # oneDNN and paddle2onnx reject NHWC graphs on the CPU; the weights are the same in NCHW.
            model = self._build_model_like(data_format="NCHW")
            LOGGER.info("exporting the NHWC model in NCHW layout (same weights)")
        model.eval()
        return export_inference(model, save_dir or g["save_inference_dir"], image_shape=g["image_shape"],
                                eval_ops=eval_dataset["transform_ops"], label_list=label_list_for(eval_dataset),
                                softmax=softmax, onnx=onnx, model_name=self.config["Arch"]["name"])

    def _build_model_like(self, **overrides):
        model = self._build_model(**overrides)
        model.set_state_dict(self.model.state_dict())
        return model

    # ---------------------------------------------------------------- train
    def train(self):
        return _Trainer(self).fit()


DIST_BN_MODES = ("reduce", "broadcast", "none")
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


class _Trainer:
    """The training loop's state; Engine.train() builds one and runs it."""

    def __init__(self, engine):
        self.engine, self.config = engine, engine.config
        g = self.config["Global"]
        if g["dist_bn"] not in DIST_BN_MODES:
            raise ValueError(f"Global.dist_bn {g['dist_bn']!r} is not supported; choose one of "
                             f"{', '.join(DIST_BN_MODES)}")
        self.g, self.is_main = g, engine.rank == 0
        self.accum = max(int(g["accum_steps"]), 1)
        self.train_loader = engine.build_loader("Train")
        self.eval_loader = engine.build_loader("Eval") if g["eval_during_train"] else None
        batch = self.config["DataLoader"]["Train"]["sampler"]["batch_size"]
        total_batch = batch * engine.world_size * self.accum
        self.steps_per_epoch = max(len(self.train_loader) // self.accum, 1)
        self.schedule = build_lr(self.config["Optimizer"]["lr"], self.steps_per_epoch, g["epochs"], total_batch)
        self.model = engine.model
        self._setup_amp()
        self.optimizer = build_optimizer(self.config["Optimizer"], self.model, self.schedule,
                                         multi_precision=self.amp_level == "O2",
                                         clip_grad_norm=g["clip_grad_norm"])
        if self.amp_level == "O2":
            self.model, self.optimizer = paddle.amp.decorate(models=self.model, optimizers=self.optimizer,
                                                             level="O2", dtype=self.amp_dtype,
                                                             master_weight=True, save_dtype="float32")
        ema_cfg = self.config["EMA"]
        self.ema = ModelEMA(self.model, ema_cfg["decay"]) if ema_cfg["use_ema"] else None
        self.net = self.model
        if engine.world_size > 1:
            if g["sync_bn"]:
                if engine.device == "gpu":
                    self.model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
                else:
                    LOGGER.warning("Global.sync_bn needs GPUs; using per-process BatchNorm on the CPU")
            self.net = paddle.DataParallel(self.model)
        self.loss_fn = engine._criterion()
        self.start_epoch, self.global_step = 0, 0
        self.best = {"top1": -1.0, "epoch": -1}
        self.last_good = None
        if g["checkpoints"]:
            self._resume(g["checkpoints"])
        self.writer = ScalarWriter(engine.output_dir, g["use_visualdl"] and self.is_main)

    def _setup_amp(self):
        amp = self.config["AMP"]
        self.amp_level, self.scaler = None, None
        self.amp_dtype = amp["dtype"]
        if not amp["use_amp"]:
            return
        if amp["level"] not in AMP_LEVELS:
            raise ValueError(f"AMP.level {amp['level']!r} is not supported; choose one of {', '.join(AMP_LEVELS)}")
        if self.engine.device != "gpu":
            LOGGER.warning("AMP.use_amp needs a CUDA GPU; training in fp32 on the CPU")
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
    def _state(self, epoch):
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "lr": self.schedule.state_dict(), "epoch": epoch, "global_step": self.global_step,
            "best": dict(self.best), "ema": self.ema.state_dict() if self.ema else None,
            "scaler": self.scaler.state_dict() if self.scaler else None, "rng": rng_state(),
            "arch": self.config["Arch"],
        }

    def _save(self, name, epoch):
        prefix = os.path.join(self.engine.output_dir, name)
        save_checkpoint(prefix, self.model.state_dict(), self._state(epoch))
        return prefix

    def _resume(self, prefix):
        state = load_training_state(prefix)
        self.model.set_state_dict(state["model"])
        self.optimizer.set_state_dict(state["optimizer"])
        self.schedule.set_state_dict(state["lr"])
        if self.ema and state.get("ema"):
            self.ema.set_state_dict(state["ema"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.start_epoch, self.global_step = state["epoch"] + 1, state["global_step"]
        self.best = state["best"]
        self.last_good = prefix
        LOGGER.info(f"resumed from {prefix}: next epoch {self.start_epoch + 1}, global step {self.global_step}")

    # ------------------------------------------------------------ loop
    def fit(self):
        g = self.g
        if self.is_main:
            os.makedirs(self.engine.output_dir, exist_ok=True)
            dump_config(self.config, os.path.join(self.engine.output_dir, "config.yaml"))
            LOGGER.info("effective config:\n" + _format_config(self.config))
        for epoch in range(self.start_epoch, g["epochs"]):
            self._train_epoch(epoch)
            self._end_of_epoch(epoch)
        if self.engine.world_size > 1:
            self._check_ranks_in_sync()
        self.writer.close()
        return {"best_top1": self.best["top1"], "best_epoch": self.best["epoch"] + 1,
                "output_dir": self.engine.output_dir}

    def _check_ranks_in_sync(self):
        """Compares per-tensor checksums across ranks: DataParallel must keep the weights identical, and
        Global.dist_bn the BN statistics (left out with dist_bn none: each rank keeps its shard's)."""
        compare_bn = self.g["dist_bn"] != "none"
        checksum = paddle.stack([t.detach().astype("float64").sum() for name, t in self.model.state_dict().items()
                                 if compare_bn or not name.endswith(BN_STATISTICS)])
        gathered = []
        dist.all_gather(gathered, checksum)
        spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
        if spread == 0.0:
            LOGGER.info(f"weights identical on all {len(gathered)} ranks")
        else:
            LOGGER.warning(f"weights differ across ranks (largest checksum difference {spread:g})")

    def _train_epoch(self, epoch):
        g, loader = self.g, self.train_loader
        loader.set_epoch(epoch)
        self.engine._train_mode(self.net)
        loss_avg, top1_avg = Average(), Average()
        skipped, timed_images, timed_seconds = 0, 0, 0.0
        steps = len(loader)
        bar = progress_bar(steps, f"epoch {epoch + 1}/{g['epochs']}", self.is_main)
        tic = time.perf_counter()
        for step, (images, target, n_skipped) in enumerate(loader):
            skipped += n_skipped
            batch = images.shape[0]
            if batch == 0:
                continue
            loss, logits = self._forward_backward(images, target, step, steps)
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                resume = (f"last good checkpoint: {self.last_good} (resume with -o Global.checkpoints="
                          f"{self.last_good})" if self.last_good else "no checkpoint saved yet")
                raise TrainingDiverged(
                    f"loss is {loss_value} at epoch {epoch + 1}, step {step + 1} (global step {self.global_step}); "
                    f"{resume}. Lower Optimizer.lr.learning_rate or set Global.clip_grad_norm.")
            loss_avg.update(loss_value, batch)
            labels = target[0] if isinstance(target, tuple) else target
            top1_avg.update(topk_correct(logits, labels, (1,))[1] / batch, batch)
            now = time.perf_counter()
            if step >= g["speed_warmup_steps"]:
                timed_images += batch * self.engine.world_size
                timed_seconds += now - tic
            tic = now
            bar.update(1)
            if self.is_main and ((step + 1) % g["print_batch_step"] == 0 or step + 1 == steps):
                ips = timed_images / timed_seconds if timed_seconds else float("nan")
                lr = self.optimizer.get_lr()
                remaining = (g["epochs"] - epoch - 1) * steps + steps - step - 1
                eta = remaining * timed_seconds / max(timed_images / (batch * self.engine.world_size), 1)
                LOGGER.info(f"epoch {epoch + 1}/{g['epochs']} step {step + 1}/{steps} loss {loss_avg.value:.4f} "
                            f"lr {lr:.6f} top1 {top1_avg.value:.4f} ips {ips:.1f} img/s "
                            f"eta {time.strftime('%H:%M:%S', time.gmtime(eta))}")
                self.writer.add({"train/loss": loss_avg.value, "train/lr": lr, "train/top1": top1_avg.value,
                                 "train/ips": ips}, self.global_step)
        bar.close()
        self.epoch_summary = {"loss": loss_avg.value, "top1": top1_avg.value, "skipped": skipped,
                              "ips": timed_images / timed_seconds if timed_seconds else float("nan")}
        if skipped:
            LOGGER.warning(f"epoch {epoch + 1}: skipped {skipped} unreadable image(s); see the warnings above")

    def _forward_backward(self, images, target, step, steps):
        sync_step = (step + 1) % self.accum == 0 or step + 1 == steps
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

    def _end_of_epoch(self, epoch):
        """Every rank evaluates its share of the Eval set; rank 0 logs, keeps the best and saves."""
        g, done = self.g, epoch + 1
        if self.engine.world_size > 1 and g["dist_bn"] != "none":
            sync_bn_statistics(self.model.state_dict(), g["dist_bn"])
            if self.ema:
                sync_bn_statistics(self.ema.state_dict(), g["dist_bn"])
        if self.eval_loader is not None and (done % g["eval_interval"] == 0 or done == g["epochs"]):
            self._evaluate_and_keep_best(epoch)
        if not self.is_main:
            return
        summary = self.epoch_summary
        LOGGER.info(f"epoch {done}/{g['epochs']} done: loss {summary['loss']:.4f} top1 {summary['top1']:.4f} "
                    f"ips {summary['ips']:.1f} img/s, skipped images {summary['skipped']}")
        self.last_good = self._save("latest", epoch)
        if g["save_interval"] and done % g["save_interval"] == 0:
            self._save(f"epoch_{done}", epoch)

    def _evaluate_and_keep_best(self, epoch):
        restore = None
        if self.ema:  # evaluate (and keep as best) the EMA weights
            restore = {k: v.clone() for k, v in self.model.state_dict().items()}
            self.model.set_state_dict(self.ema.state_dict())
        result = self.engine.evaluate(self.eval_loader, self.model)
        if result["top1"] > self.best["top1"]:
            self.best = {"top1": result["top1"], "epoch": epoch}
            if self.is_main:
                atomic_save(self.model.state_dict(), os.path.join(self.engine.output_dir, "best.pdparams"))
        if restore is not None:
            self.model.set_state_dict(restore)
        topk = " ".join(f"top{k} {result[f'top{k}']:.4f}" for k in self.engine.topk)
        LOGGER.info(f"eval epoch {epoch + 1}: {topk} loss {result['loss']:.4f} over {result['samples']} images; "
                    f"best top1 {self.best['top1']:.4f} (epoch {self.best['epoch'] + 1})")
        self.writer.add({f"eval/top{k}": result[f"top{k}"] for k in self.engine.topk} | {"eval/loss": result["loss"]},
                        self.global_step)


def _format_config(config):
    import yaml
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None).rstrip()
