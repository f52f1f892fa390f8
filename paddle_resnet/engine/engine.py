"""The engine: builds the model a config describes, loads its weights, evaluates and exports; ``train()``
hands it to ``Trainer`` (trainer.py) as values."""
import logging
import os
import random

import numpy as np
import paddle
import paddle.distributed as dist

from ..data import build_dataloader, check_batches, check_data_paths
from ..data.datasets import label_list_for
from ..labels import CLASS_INDICES_FILE
from ..errors import ConfigError, InputError, UserError
from ..models import build_model
from ..models.arch import model_options
from ..verbosity import paddle_banner_hidden
from .context import RunContext
from .device import select_device
from .evaluation import Evaluator, PredictionLog
from .logger import LOGGER, setup_logging
from .losses import build_loss
from .report import DEFAULT_GALLERY, write_report
from .run_dir import clean_output_dir, lock_output_dir, unlock_output_dir
from .trainer import Preempted, Trainer


def single_entry(items):
    """PaddleClas lists such as ``Loss.Train: [{CELoss: {...}}]`` (checked by engine/rules.py) -> {...}."""
    (_name, options), = items[0].items()
    return options or {}


def overridden_keys(overrides):
    """``["Arch.class_num=5", ...]`` -> ``["Arch.class_num", ...]``."""
    return [item.split("=", 1)[0].strip() for item in overrides]


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def export_class_names(datasets, pretrained_model, checkpoint_info):
    """The names of the classes a model was trained on: its checkpoint's record (``checkpoint_info``), else those
    beside the config's Train data (``datasets``: its DataLoader section; Eval's when Train has none), else None
    with one warning."""
    from_data = label_list_for(datasets["Train"]["dataset"]) or label_list_for(datasets["Eval"]["dataset"])
    saved = (checkpoint_info or {}).get("class_names")
    if saved and from_data and list(from_data) != saved:
        LOGGER.warning(f"the class names recorded with {pretrained_model} differ from the config's data set's; "
                       f"exporting the checkpoint's")
    names = saved or from_data
    if not names:
        LOGGER.warning(f"no class names found (none recorded with {pretrained_model}, no {CLASS_INDICES_FILE} beside "
                       f"the config's data): predictions will name classes by index")
    return names


class Engine:
    """``overrides``: the ``-o Section.key=value`` strings the config was loaded with (``load_config``'s), so
    that training can list them and a conflict with the checkpoint can name the one to drop."""

    def __init__(self, config, mode="train", overrides=()):
        self.config, self.mode, self.overrides = config, mode, list(overrides)
        settings = config["Global"]
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.output_dir = settings["output_dir"]
        if mode in ("train", "eval"):  # before the model is built: a missing folder fails fast
            if mode == "train":
                check_data_paths(config["DataLoader"]["Train"], "Train")
            if mode == "eval" or settings["eval_during_train"]:
                check_data_paths(config["DataLoader"]["Eval"], "Eval")
        if mode in ("eval", "export") and not settings["pretrained_model"]:
            raise ConfigError(f"Global.pretrained_model is not set: {mode} needs trained weights, "
                              f"e.g. -o Global.pretrained_model={os.path.join(self.output_dir, 'best')}")
        if mode == "train" and self.rank == 0:
            lock_output_dir(self.output_dir)  # before train.log is opened: two runs must not share it
        try:
            self._set_up(config, mode, settings)
        except UserError:
            self._release_output_dir(refused=True)
            raise

    def _set_up(self, config, mode, settings):
        """Logging, device, model and weights; a UserError here releases (and, if unused, removes) the folder."""
        setup_logging(self.output_dir if mode == "train" else None, self.rank)
        if mode == "train" and self.rank == 0:
            removed = clean_output_dir(self.output_dir)
            if removed:
                LOGGER.info(f"removed {len(removed)} unfinished file(s) of a killed run from {self.output_dir}")
        no_record = mode == "train" or not settings["pretrained_model"]  # infer checks for weights itself
        self.class_num = config["Arch"]["class_num"]  # eval and export: the checkpoint's (_read_checkpoint_info)
        self.checkpoint_info = None if no_record else self._read_checkpoint_info(settings["pretrained_model"])
        self.device = select_device(settings["device"], settings["num_threads"])
        if self.world_size > 1 and mode != "export":
            with paddle_banner_hidden():
                dist.init_parallel_env()
        seed_everything(settings["seed"])  # the same initial weights on every rank
        self.model = self._build_model()
        if settings["pretrained_model"]:
            self._load_pretrained(settings["pretrained_model"])
        self.evaluator = Evaluator(single_entry(config["Metric"]["Eval"])["topk"], build_loss(config["Loss"]["Eval"]),
                                   self.rank, self.world_size, self.class_num)
        seed_everything((settings["seed"] + self.rank) % 2**32)  # per-rank dropout and mixup draws (numpy: < 2**32)

    # ---------------------------------------------------------------- model
    def _build_model(self, **overrides):
        arch = self.config["Arch"]
        return build_model(arch["name"], num_classes=self.class_num, **{**model_options(arch), **overrides})

    def _read_checkpoint_info(self, path):
        """The run record of the weights to evaluate or export (see checkpoint.read_run_info); its class
        count replaces the config's, unless ``-o Arch.class_num`` asked for another (an error)."""
        from .checkpoint import read_run_info
        info = read_run_info(path)
        saved = (info or {}).get("class_num")
        if saved is None or saved == self.class_num:
            return info
        if "Arch.class_num" in overridden_keys(self.overrides):
            raise ConfigError(f"Arch.class_num is {self.class_num} (-o) but {path} was trained with {saved} "
                              f"classes (its .run.json); drop -o Arch.class_num to use the checkpoint's")
        LOGGER.info(f"Arch.class_num: {saved}, as {path} was trained (the config says {self.class_num})")
        self.class_num = saved
        return info

    def _load_pretrained(self, path):
        from ..weights import load_pretrained
        # Training may swap the head for a new class count; eval and export must not.
        report = load_pretrained(self.model, path, reinit_head=self.mode == "train")
        LOGGER.info(f"loaded pretrained weights: {report}")

    # ---------------------------------------------------------------- eval
    def build_loader(self, mode, distributed=None, sample_indices=False):
        return build_dataloader(self.config["DataLoader"][mode], mode, seed=self.config["Global"]["seed"],
                                class_num=self.class_num, distributed=distributed, sample_indices=sample_indices)

    def evaluate(self, report=None, gallery=DEFAULT_GALLERY, explain=False):
        """Top-k accuracy, mean loss and macro F1 of the model over the whole Eval set (engine/evaluation.py).
        ``report``: a folder for the evaluation report (engine/report.py), whose path the result gives as
        ``report``; ``gallery``: how many misclassified images it shows; ``explain``: with Grad-CAM overlays."""
        if report is None:
            loader = self.build_loader("Eval")
            check_batches(loader, "Eval", self.world_size)
            return self.evaluator.evaluate(loader, self.model)
        if self.world_size > 1:
            raise InputError("a report is written by one process: run eval.py --report without "
                             "paddle.distributed.launch")
        predictions, result = self.predictions()
        if explain:
            from .explain import gallery_overlays
            predictions.overlays = gallery_overlays(self, predictions, gallery)
        result["report"] = write_report(report, predictions, gallery)
        return result

    def predictions(self):
        """(``report.Predictions`` of every Eval image, the eval's figures), on this process alone."""
        loader = self.build_loader("Eval", distributed=False, sample_indices=True)
        check_batches(loader, "Eval")
        log = PredictionLog(loader.dataset)
        result = self.evaluator.evaluate(loader, self.model, log)
        names = ((self.checkpoint_info or {}).get("class_names") or loader.dataset.class_names
                 or [str(i) for i in range(self.class_num)])
        eval_data = self.config["DataLoader"]["Eval"]["dataset"]
        source = (f"{self.config['Arch']['name']} weights {self.config['Global']['pretrained_model']} on "
                  f"{eval_data.get('cls_label_path') or eval_data['image_root']}")
        return log.predictions(names, source), result

    # ---------------------------------------------------------------- export
    def export(self, save_dir=None, softmax=True, onnx=None, quantize=None, calib_images=None, max_drop=None):
        """Writes the inference folder. ``onnx=None`` writes ONNX when paddle2onnx is installed (the faster CPU
        backend); ``quantize="int8"`` adds the int8 model, checked on the Eval set (deploy/quantize.py)."""
        from ..deploy import export_inference
        from ..deploy.export import paddle2onnx_installed
        settings = self.config["Global"]
        datasets = self.config["DataLoader"]
        save_dir = save_dir or settings["save_inference_dir"]
        int8 = self._int8_step(quantize, calib_images, max_drop)
        if onnx is None:
            onnx = bool(int8) or paddle2onnx_installed()
            if not onnx:
                LOGGER.info("paddle2onnx is not installed, so no inference.onnx: predict.py will use Paddle "
                            "Inference, slower on CPU than ONNX Runtime (pip install -e .[onnx])")
        elif int8 and not onnx:
            raise ConfigError("--quantize int8 quantizes the ONNX model: leave out --no-onnx")
        label_list = export_class_names(datasets, settings["pretrained_model"], self.checkpoint_info)
        model = self.model
        if model.data_format == "NHWC":
            # oneDNN and paddle2onnx reject NHWC graphs on the CPU; the weights are the same in NCHW.
            model = self._build_model_like(data_format="NCHW")
            LOGGER.info("exporting the NHWC model in NCHW layout (same weights)")
        if getattr(model, "layer_type", "ConvBNLayer") == "DiverseBranchBlock":
            # The deploy form: each Diverse Branch Block folded into one conv (a copy; training keeps its branches).
            model = (model if model is not self.model else self._build_model_like()).reparameterize()
            LOGGER.info("exporting the Diverse Branch Blocks re-parameterised: one conv each")
        image_shape, eval_ops = settings["image_shape"], datasets["Eval"]["dataset"]["transform_ops"]
        if image_shape[0] == 4:
            model, image_shape, eval_ops = self._without_zero_channel(model, image_shape, eval_ops)
        model.eval()
        written = export_inference(model, save_dir, image_shape=image_shape,
                                   eval_ops=eval_ops, label_list=label_list,
                                   softmax=softmax, onnx=onnx, model_name=self.config["Arch"]["name"],
                                   extra_files=int8)
        if int8:
            int8.raise_if_refused(save_dir)
        return written

    def _int8_step(self, quantize, calib_images, max_drop):
        """The export step that adds the int8 model (None without ``quantize``), calibrated and checked on the
        Eval set in its configured order, read on this process alone."""
        if quantize is None:
            return None
        from ..deploy.quantize import DEFAULT_CALIB_IMAGES, DEFAULT_MAX_DROP, QUANTIZE_CHOICES, Int8Export
        from ..errors import check_choice
        check_choice("quantize", quantize, QUANTIZE_CHOICES)
        check_data_paths(self.config["DataLoader"]["Eval"], "Eval")

        def eval_batches():
            for images, labels, _skipped in self.build_loader("Eval", distributed=False):
                yield images.numpy().astype("float32"), labels.numpy().reshape(-1)
        return Int8Export(eval_batches, DEFAULT_CALIB_IMAGES if calib_images is None else calib_images,
                          DEFAULT_MAX_DROP if max_drop is None else max_drop)

    def _without_zero_channel(self, model, image_shape, eval_ops):
        """A 4-channel model of PaddleClas's *_ultra layout, whose fourth input channel is NormalizeImage's
        zeros (data/rules.py checks that), as the 3-channel model it computes: the stem conv without the weights
        that only ever see zeros. Exported so, it takes ordinary 3-channel images."""
        state = model.state_dict()
        stem = [key for key, value in state.items() if len(value.shape) == 4 and value.shape[1] == 4]
        if len(stem) != 1:
            raise RuntimeError(f"expected one 4-channel stem conv weight, found {stem}")
        exported = self._build_model(in_channels=3, data_format="NCHW")
        exported.set_state_dict({**state, stem[0]: state[stem[0]][:, :3]})
        ops = [{"NormalizeImage": {**op["NormalizeImage"], "channel_num": 3}}
               if isinstance(op, dict) and "NormalizeImage" in op else op for op in eval_ops]
        LOGGER.info("exporting the 4-channel model (its fourth input channel is all zeros) as the 3-channel "
                    "model it computes: the stem conv's weights for the zero channel are left out")
        return exported, [3, *image_shape[1:]], ops

    def _build_model_like(self, **overrides):
        model = self._build_model(**overrides)
        model.set_state_dict(self.model.state_dict())
        return model

    # ---------------------------------------------------------------- train
    def trainer(self):
        """The Trainer of this engine's model, its loaders built from the config."""
        context = RunContext(self.output_dir, self.device, self.rank, self.world_size, tuple(self.overrides))
        eval_loader = self.build_loader("Eval") if self.config["Global"]["eval_during_train"] else None
        return Trainer(self.config, self.model, context, self.evaluator, self.build_loader("Train"), eval_loader)

    def train(self):
        try:
            result = self.trainer().fit()
        except UserError:
            self._release_output_dir(refused=True)
            raise
        except Preempted:  # latest is saved: the folder is free for the resume
            self._release_output_dir()
            raise
        self._release_output_dir()
        return result

    def _release_output_dir(self, refused=False):
        if self.mode == "train" and self.rank == 0:
            for handler in list(LOGGER.handlers):  # train.log, so that an unused folder can be removed
                if isinstance(handler, logging.FileHandler):
                    handler.close()
                    LOGGER.removeHandler(handler)
            unlock_output_dir(self.output_dir, refused=refused)
