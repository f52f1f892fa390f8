"""PaddleClas recipe parity: batch ops, losses, keys and models against PaddleClas 2.6's own code.

PaddleClas's batch ops draw from numpy's and Python's global generators; ours from the ``rng`` handed in. The
tests record every draw ours makes and hand the same values, in the same order, to PaddleClas's code (its
``np.random``, ``scipy.stats.beta`` and ``random`` replaced by a replay), so the draw order is checked too.
"""
import random
import warnings

import numpy as np
import paddle
import pytest
from PIL import Image

from paddle_resnet.data.batch_ops import CutmixOperator, FmixOperator, MixupLabels, MixupOperator, OpSampler
from paddle_resnet.data.pipeline import build_batch_transform
from paddle_resnet.engine import losses
from paddle_resnet.errors import ConfigError
from paddleclas_code import import_ref

CLASS_NUM = 5
# What our Generator method is called, and what PaddleClas calls for the same draw.
THEIR_NAME = {"permutation": "permutation", "beta": "beta", "integers": "randint", "standard_normal": "randn",
              "random": "random", "normal": "normal"}


class Recorder:
    """A numpy Generator that logs each draw as (PaddleClas's name for it, value)."""

    def __init__(self, seed):
        self.rng, self.draws = np.random.default_rng(seed), []

    def __getattr__(self, name):
        method = getattr(self.rng, name)

        def draw(*args, **kwargs):
            value = method(*args, **kwargs)
            self.draws.append((THEIR_NAME[name], value))
            return value
        return draw


class Replay:
    """Hands out recorded draws in order, checking that PaddleClas asks for the same kind of draw."""

    def __init__(self, draws):
        self.draws = list(draws)

    def take(self, name, check=None):
        assert self.draws, f"PaddleClas draws more ({name}) than ours"
        kind, value = self.draws.pop(0)
        assert kind == name, f"PaddleClas draws {name} where ours drew {kind}"
        if check is not None:
            assert check(value), (name, value)
        return value

    def permutation(self, n):
        return self.take("permutation", lambda v: len(v) == n)

    def beta(self, a, b):
        return self.take("beta")

    rvs = beta  # scipy.stats.beta.rvs(a, b)

    def randint(self, high):
        return self.take("randint", lambda v: 0 <= v < high)

    def randn(self, *shape):
        return self.take("randn", lambda v: v.shape == shape)

    def random(self):
        return self.take("random")

    def normal(self, loc, scale, size):
        return self.take("normal", lambda v: v.shape == (size,))


class NumpyWithRandom:
    """numpy, with ``np.random`` replaced."""

    def __init__(self, replay):
        self.random = replay

    def __getattr__(self, name):
        return getattr(np, name)


class ReplayRandom(random.Random):
    """Python's ``random`` module for ``random.choices``: its one uniform draw comes from the replay."""

    def __init__(self, replay):
        super().__init__(0)
        self.replay = replay

    def random(self):
        return self.replay.random()


@pytest.fixture(scope="module")
def photos():
    """4 real photos as a normalised float32 batch [4, 3, 48, 64] (not square: a height/width swap shows)."""
    from skimage import data
    images = [np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB").resize((64, 48), Image.BILINEAR))
              for name in ("astronaut", "chelsea", "coffee", "rocket")]
    batch = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return (batch - np.float32(0.45)) / np.float32(0.225)


def theirs_with(replay, monkeypatch):
    """PaddleClas's batch_operators and fmix modules, drawing from ``replay``."""
    batch_ops, fmix = import_ref("data.preprocess.batch_ops.batch_operators"), import_ref("data.preprocess.ops.fmix")
    monkeypatch.setattr(batch_ops, "np", NumpyWithRandom(replay))
    monkeypatch.setattr(batch_ops, "random", ReplayRandom(replay))
    monkeypatch.setattr(fmix, "np", NumpyWithRandom(replay))
    monkeypatch.setattr(fmix, "beta", replay)
    monkeypatch.setattr(fmix, "random", replay)
    return batch_ops


def soft_target(targets):
    """Our targets as the soft target the loss scores (float32 [N, CLASS_NUM])."""
    if not isinstance(targets, MixupLabels):
        return np.eye(CLASS_NUM, dtype=np.float32)[targets]
    tensors = MixupLabels(paddle.to_tensor(targets.labels_a), paddle.to_tensor(targets.labels_b), targets.lam)
    return losses.soft_target(tensors, CLASS_NUM)[0].numpy()


def run_both(ours, their_op, images, seed, monkeypatch):
    labels = np.arange(len(images), dtype=np.int64)
    rng = Recorder(seed)
    mixed, targets = ours(images.copy(), labels, rng)
    replay = Replay(rng.draws)
    their_op = their_op(theirs_with(replay, monkeypatch))
    with warnings.catch_warnings():  # fmix.py's irfftn(s=...) without axes: deprecated in NumPy 2, same result
        warnings.simplefilter("ignore", DeprecationWarning)
        batch = their_op([(image, label) for image, label in zip(images.copy(), labels)])
    assert not replay.draws, "PaddleClas drew fewer values than ours"
    their_images, their_targets = np.stack([b[0] for b in batch]), np.stack([b[1] for b in batch])
    return mixed, targets, their_images, their_targets


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ours, theirs", [
    (MixupOperator(alpha=0.2), lambda m: m.MixupOperator(CLASS_NUM, alpha=0.2)),
    (CutmixOperator(alpha=1.0), lambda m: m.CutmixOperator(CLASS_NUM, alpha=1.0)),
    (CutmixOperator(), lambda m: m.CutmixOperator(CLASS_NUM)),
    (FmixOperator(), lambda m: m.FmixOperator(CLASS_NUM)),
    (FmixOperator(alpha=0.5, decay_power=2.5, max_soft=0.1, reformulate=True),
     lambda m: m.FmixOperator(CLASS_NUM, alpha=0.5, decay_power=2.5, max_soft=0.1, reformulate=True)),
], ids=["mixup", "cutmix", "cutmix-default", "fmix", "fmix-soft-reformulated"])
@pytest.mark.slow
def test_batch_ops_give_paddleclas_pixels_and_targets_bit_exact(photos, ours, theirs, seed, monkeypatch):
    mixed, targets, their_images, their_targets = run_both(ours, theirs, photos, seed, monkeypatch)
    assert mixed.dtype == np.float32
    # PaddleClas's FMix mixes in float64 (its mask is float64); a float32 model sees it as float32.
    np.testing.assert_array_equal(mixed, their_images.astype(np.float32))
    # CutmixOperator's lam is a numpy float64: under numpy 2 its targets are float64 (PaddleClas pins numpy 1.24,
    # where they are float32 as Mixup's); the loss takes float32.
    np.testing.assert_array_equal(soft_target(targets), their_targets.astype(np.float32))
    if targets.lam < 1 and not (targets.labels_b == targets.labels_a).all():  # not an empty box or identity perm
        assert not np.array_equal(mixed, photos)


def test_op_sampler_chooses_as_paddleclas_including_no_op(photos, monkeypatch):
    config = {"MixupOperator": {"alpha": 0.2, "prob": 0.3}, "CutmixOperator": {"alpha": 1.0, "prob": 0.3}}
    ours = build_batch_transform([{"OpSampler": config}])
    chosen = []
    for seed in range(12):
        mixed, targets, their_images, their_targets = run_both(
            ours, lambda m: m.OpSampler(CLASS_NUM, **{k: dict(v) for k, v in config.items()}), photos, seed,
            monkeypatch)
        np.testing.assert_array_equal(mixed, their_images)
        if their_targets.ndim == 1:  # no op: PaddleClas's hard labels
            their_targets = np.eye(CLASS_NUM, dtype=np.float32)[their_targets]
        np.testing.assert_array_equal(soft_target(targets), their_targets.astype(np.float32))
        chosen.append("none" if not isinstance(targets, MixupLabels) else
                      "cutmix" if (mixed == photos).sum() > mixed.size // 4 else "mixup")
    assert set(chosen) == {"none", "mixup", "cutmix"}, chosen  # 12 seeds reach all three


def test_mixup_cutmix_hybrid_is_refused_with_what_to_use():
    with pytest.raises(ConfigError) as error:
        build_batch_transform([{"MixupCutmixHybrid": {"mixup_alpha": 0.8}}], where="batch_transform_ops")
    assert str(error.value) == (
        "batch_transform_ops: MixupCutmixHybrid (timm's per-element Mixup/CutMix with label smoothing, used only by "
        "PaddleClas's CAE ViT fine-tuning configs) is not built here; use OpSampler with MixupOperator and "
        "CutmixOperator, and CELoss epsilon for the smoothing")


@pytest.mark.parametrize("ops, message", [
    ({"MixupOperator": {"alpha": 0.2}},
     "OpSampler: MixupOperator needs {prob: p, ...} (PaddleClas would use prob 0 and never run it), got <dict of 1>"),
    ({"MixupOperator": {"alpha": 0.2, "prob": 0.6}, "CutmixOperator": {"prob": 0.6}},
     "OpSampler: the probs add up to 1.2, more than 1"),
    ({"MixupOprator": {"prob": 0.5}}, "OpSampler: op 'MixupOprator' is not supported; choose one of MixupOperator, "
                                      "CutmixOperator, FmixOperator; did you mean 'MixupOperator'?"),
    ({"CutmixOperator": {"alpha": 0, "prob": 0.5}}, "CutmixOperator: alpha must be a number > 0, got 0"),
    ({"FmixOperator": {"decay_power": 400, "prob": 0.5}},
     "FmixOperator: decay_power must be a number > 0 and <= 10 (FMix uses 3), got 400"),
    ({"FmixOperator": {"max_soft": 0.7, "prob": 0.5}},
     "FmixOperator: max_soft must be a number from 0 to 0.5, got 0.7"),
])
def test_op_sampler_refusals_are_one_line(ops, message):
    with pytest.raises(ConfigError) as error:
        build_batch_transform([{"OpSampler": ops}], where="DataLoader.Train.dataset.batch_transform_ops")
    assert str(error.value) == f"DataLoader.Train.dataset.batch_transform_ops: {message}"


# ---------------------------------------------------------------------------------------------------- losses

def fixed_logits():
    return paddle.to_tensor(np.random.default_rng(7).normal(0, 3, (4, CLASS_NUM)).astype(np.float32))


MIXED = MixupLabels(np.array([0, 1, 2, 3]), np.array([2, 0, 3, 3]), 0.37)


def their_soft(target):
    return (np.eye(CLASS_NUM, dtype=np.float32)[target.labels_a] * target.lam
            + np.eye(CLASS_NUM, dtype=np.float32)[target.labels_b] * (1 - target.lam))


def as_ours(target):
    if isinstance(target, MixupLabels):
        return MixupLabels(paddle.to_tensor(target.labels_a), paddle.to_tensor(target.labels_b), target.lam)
    return paddle.to_tensor(target)


def as_theirs(target):
    return paddle.to_tensor(their_soft(target) if isinstance(target, MixupLabels) else target.reshape(-1, 1))


@pytest.mark.parametrize("target", [np.array([0, 4, 2, 1]), MIXED], ids=["hard", "mixed"])
@pytest.mark.parametrize("epsilon", [None, 0.1])
def test_celoss_equals_paddleclas_celoss(target, epsilon):
    celoss = import_ref("loss.celoss")
    logits = fixed_logits()
    options = {} if epsilon is None else {"epsilon": epsilon}
    ours = losses.build_loss([{"CELoss": {"weight": 1.0, **options}}])(logits, as_ours(target))
    theirs = celoss.CELoss(epsilon=epsilon)(logits, as_theirs(target))["CELoss"]
    assert float(ours) == float(theirs)


def test_celoss_softmax_of_a_soft_target_is_paddleclas_bug_and_can_be_turned_off():
    logits = fixed_logits()
    matched = losses.build_loss([{"CELoss": {}}])(logits, as_ours(MIXED))
    fixed = losses.build_loss([{"CELoss": {"softmax_soft_target": False}}])(logits, as_ours(MIXED))
    log_p = paddle.nn.functional.log_softmax(logits).numpy()
    rows = np.arange(4)
    expected = -(MIXED.lam * log_p[rows, MIXED.labels_a] + (1 - MIXED.lam) * log_p[rows, MIXED.labels_b]).mean()
    assert float(fixed) == pytest.approx(expected, rel=1e-6)
    assert abs(float(matched) - expected) > 0.1  # the softmaxed target is far from the mixup target


def test_soft_target_ce_and_weighted_sum_equal_paddleclas():
    soft_ce, celoss = import_ref("loss.softtargetceloss"), import_ref("loss.celoss")
    logits = fixed_logits()
    ours = losses.build_loss([{"SoftTargetCrossEntropy": {"weight": 1.0}}])(logits, as_ours(MIXED))
    theirs = soft_ce.SoftTargetCrossEntropy()(logits, as_theirs(MIXED))["SoftTargetCELoss"]
    assert float(ours) == float(theirs)
    both = losses.build_loss([{"CELoss": {"weight": 0.7, "epsilon": 0.1}},
                              {"SoftTargetCrossEntropy": {"weight": 0.3}}])(logits, as_ours(MIXED))
    expected = (celoss.CELoss(epsilon=0.1)(logits, as_theirs(MIXED))["CELoss"] * 0.7
                + soft_ce.SoftTargetCrossEntropy()(logits, as_theirs(MIXED))["SoftTargetCELoss"] * 0.3)
    assert float(both) == float(expected)
    # One entry: PaddleClas's CombinedLoss does not apply its weight.
    assert float(losses.build_loss([{"CELoss": {"weight": 3.0}}])(logits, as_ours(MIXED))) == \
        float(losses.build_loss([{"CELoss": {"weight": 1.0}}])(logits, as_ours(MIXED)))


@pytest.mark.parametrize("entries, message", [
    ([{"MixCELoss": {"weight": 1.0}}], "Loss.Train: MixCELoss is deprecated in PaddleClas 2.6 (its own code "
                                       "raises); use CELoss, which scores mixed batches"),
    ([{"DistillationCELoss": {"weight": 1.0}}],
     "Loss.Train: DistillationCELoss needs a teacher model (PaddleClas's DistillationModel), which this suite does "
     "not build; train with CELoss (or SoftTargetCrossEntropy on a teacher's soft labels)"),
    ([{"DistillationDMLLoss": {"weight": 1.0}}], "Loss.Train: DistillationDMLLoss needs a teacher model"),
    ([{"SoftTargetCE": {}}], "Loss.Train entry 'SoftTargetCE' is not supported; choose one of CELoss, "
                             "SoftTargetCrossEntropy, FocalLoss; did you mean 'SoftTargetCrossEntropy'?"),
    ([{"CELoss": {}}, {"CELoss": {"epsilon": 0.1}}], "Loss.Train: CELoss is given 2 times; PaddleClas would count "
                                                     "only the last one: give it once"),
    ([{"CELoss": {"softmax_soft_target": "no"}}], "Loss.Train.CELoss.softmax_soft_target must be true or false, "
                                                  "got 'no'"),
])
def test_loss_refusals_name_what_to_use(entries, message):
    with pytest.raises(ConfigError) as error:
        losses.check_loss_entries(entries, "Loss.Train")
    assert str(error.value).startswith(message)


# ------------------------------------------------------------------------------------------- keys and models

def test_normalize_channel_num_4_appends_paddleclas_zero_channel(photos):
    from paddle_resnet.data.transforms import NormalizeImage
    from paddle_resnet.data.pipeline import build_transforms
    image = (photos[1].transpose(1, 2, 0) * 50 + 120).clip(0, 255).astype(np.uint8)
    ours = NormalizeImage(scale="1.0/255.0", order="", channel_num=4)(image)
    three = NormalizeImage(scale="1.0/255.0", order="")(image)
    assert ours.shape == (48, 64, 4) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours[:, :, :3], three)
    assert not ours[:, :, 3].any()
    chw = build_transforms([{"NormalizeImage": {"order": "", "channel_num": 4}}, "ToCHWImage"])(image)
    np.testing.assert_array_equal(chw, ours.transpose(2, 0, 1))
    with pytest.raises(ConfigError, match=r"^NormalizeImage: channel_num 5 is not supported; choose one of 3, 4"):
        NormalizeImage(channel_num=5)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_pca_lighting_equals_paddleclas(name, monkeypatch):
    from skimage import data
    from paddle_resnet.data.pipeline import build_transforms
    operators = import_ref("data.preprocess.ops.operators")
    image = np.ascontiguousarray(getattr(data, name)()[:40, :56])
    rng = Recorder(5)
    ours = build_transforms(["PCALighting"])(image, rng)
    monkeypatch.setattr(operators, "np", NumpyWithRandom(Replay(rng.draws)))
    theirs = operators.PCALighting()(image)
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < np.abs(ours - image).max() < 1  # under one pixel level: PaddleClas's scale, kept


def ultra_config(tmp_path, folders):
    from engine_fixtures import tiny_config
    normalize = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                    "order": "", "channel_num": 4, "output_fp16": True}}
    train_ops = [{"DecodeImage": {"to_rgb": True}}, {"RandFlipImage": {"flip_code": 1}}, normalize]
    eval_ops = [{"DecodeImage": {"to_rgb": True}}, normalize]
    config = tiny_config(tmp_path, *folders, Global={"epochs": 1, "image_channel": 4, "image_shape": [4, 16, 16],
                                                     "output_dir": str(tmp_path / "out"), "device": "cpu",
                                                     "print_batch_step": 1, "use_visualdl": False},
                         Arch={"name": "ResNet18", "class_num": 3, "input_image_channel": 4, "data_format": "NHWC"},
                         Optimizer={"name": "Momentum", "momentum": 0.9, "multi_precision": True,
                                    "lr": {"name": "Cosine", "learning_rate": 0.05, "warmup_epoch": 0}},
                         AMP={"use_amp": True, "level": "O1"})
    config["DataLoader"]["Train"]["dataset"]["transform_ops"] = train_ops
    config["DataLoader"]["Eval"]["dataset"]["transform_ops"] = eval_ops
    return config


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from engine_fixtures import make_image_folder
    root = tmp_path_factory.mktemp("images")
    return make_image_folder(root / "train", per_class=4), make_image_folder(root / "val", per_class=2, seed=1)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["Global"].update(image_channel=3),
     "Global.image_channel is 3 but Global.image_shape has 4 channels: set both to the same number"),
    (lambda c: c["DataLoader"]["Eval"]["dataset"]["transform_ops"][1]["NormalizeImage"].pop("channel_num"),
     "DataLoader.Train.dataset.transform_ops give 3 channel(s) but Global.image_shape has 4: 4 channels are "
     "PaddleClas's *_ultra layout"),
    (lambda c: c["Arch"].update(in_channels=3),
     "Arch.input_image_channel (4) and Arch.in_channels (3) differ: give one of them"),
    (lambda c: c["Optimizer"].update(multi_precision="yes"), "Optimizer.multi_precision must be a bool (true/false), got 'yes'"),
])
def test_ultra_keys_are_checked_when_the_config_loads(tmp_path, folders, change, message):
    from paddle_resnet.config import validate
    config = ultra_config(tmp_path, folders)
    validate(ultra_config(tmp_path, folders))  # as given, it loads
    change(config)
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value).startswith(message)


@pytest.mark.slow
def test_ultra_four_channel_recipe_trains_with_multi_precision_and_exports_as_three_channels(
        tmp_path, folders, monkeypatch):
    from skimage import data
    from paddle_resnet.config import validate
    from paddle_resnet.deploy import Predictor
    from paddle_resnet.engine import Engine, trainer
    passed = []

    def recording_build_optimizer(*args, **kwargs):
        passed.append(kwargs["multi_precision"])
        return build_optimizer(*args, **kwargs)
    build_optimizer = trainer.build_optimizer
    monkeypatch.setattr(trainer, "build_optimizer", recording_build_optimizer)
    engine = Engine(validate(ultra_config(tmp_path, folders)))
    engine.train()
    assert passed == [True]
    assert [v.shape[1] for v in engine.model.state_dict().values() if len(v.shape) == 4][0] == 4
    engine.export(str(tmp_path / "inference"), onnx=False)
    predictor = Predictor(str(tmp_path / "inference"), backend="paddle", warmup=0)
    photo = np.asarray(Image.fromarray(data.chelsea()).resize((16, 16), Image.BILINEAR))
    batch = predictor.preprocess([photo])
    assert batch.shape == (1, 3, 16, 16)
    padded = np.concatenate([batch, np.zeros((1, 1, 16, 16), np.float32)], axis=1)
    engine.model.eval()
    expected = paddle.nn.functional.softmax(engine.model(paddle.to_tensor(padded))).numpy()
    np.testing.assert_allclose(predictor.run(batch), expected, atol=1e-5)


def photo_batch(size=64):
    from skimage import data
    images = [np.asarray(Image.fromarray(getattr(data, n)()).convert("RGB").resize((size, size), Image.BILINEAR))
              for n in ("astronaut", "coffee")]
    batch = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return paddle.to_tensor((batch - np.float32(0.45)) / np.float32(0.225))


def seeded_paddleclas_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_state_dict({k: paddle.to_tensor(rng.standard_normal(v.shape).astype("float32") * 0.05
                                              + (1.0 if k.endswith("_variance") else 0.0))
                          for k, v in model.state_dict().items()})


def test_resnet200_vd_alias_is_paddleclas_layout_and_timm_row_stays():
    from paddle_resnet.models import model_args
    assert model_args("ResNet200_vd") == {"depth": 200, "stem_type": "deep", "avg_down": True,
                                          "stage_blocks": (3, 12, 48, 3)}
    assert model_args("resnet200_vd") == {"depth": 200, "stem_type": "deep", "avg_down": True}  # timm's resnet200d
    from paddle_resnet.models import check_build_args
    with pytest.raises(ConfigError, match=r"^stage_blocks must be 4 integers from 1 to 64 \(blocks per stage\), "
                                          r"got \[3, 12, 480, 3\]$"):
        check_build_args("resnet50", stage_blocks=[3, 12, 480, 3])


@pytest.mark.slow
def test_resnet200_vd_logits_equal_paddleclas_own_class(tmp_path):
    from paddleclas_code import paddleclas_resnet
    from paddle_resnet import build_model, load_pretrained
    theirs = paddleclas_resnet().ResNet200_vd(class_num=CLASS_NUM)
    seeded_paddleclas_weights(theirs)
    paddle.save(theirs.state_dict(), str(tmp_path / "ResNet200_vd_pretrained.pdparams"))
    ours = build_model("ResNet200_vd", num_classes=CLASS_NUM)
    load_pretrained(ours, str(tmp_path / "ResNet200_vd_pretrained.pdparams"))
    theirs.eval(), ours.eval()
    x = photo_batch()
    np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())


def paddleclas_resnet18_dbb():
    """PaddleClas's own ResNet18 with layer_type DiverseBranchBlock, as its ResNet18_dbb.yaml builds it. Its
    IdentityBasedConv1x1 holds a float64 identity that Paddle 3 refuses to convolve with float32 input (a
    PaddleClas bug on Paddle 3): cast to float32 here, the value unchanged."""
    from paddleclas_code import paddleclas_resnet
    theirs = paddleclas_resnet().ResNet18(class_num=CLASS_NUM, layer_type="DiverseBranchBlock",
                                          use_first_short_conv=False)
    for layer in theirs.sublayers():
        if hasattr(layer, "id_tensor"):
            layer.id_tensor = layer.id_tensor.astype("float32")
    return theirs


@pytest.mark.slow  # ~3 s: two ResNet18s and the fold
def test_resnet18_dbb_loads_paddleclas_weights_equal_logits_and_reparameterises_within_1e5(tmp_path):
    from paddle_resnet import build_model, load_pretrained
    theirs = paddleclas_resnet18_dbb()
    seeded_paddleclas_weights(theirs)
    paddle.save(theirs.state_dict(), str(tmp_path / "ResNet18_dbb_pretrained.pdparams"))
    ours = build_model("ResNet18", num_classes=CLASS_NUM, layer_type="DiverseBranchBlock", project_stage1=False)
    load_pretrained(ours, str(tmp_path / "ResNet18_dbb_pretrained.pdparams"))  # every tensor, or it raises
    theirs.eval(), ours.eval()
    x = photo_batch()
    trained = ours(x).numpy()
    np.testing.assert_array_equal(trained, theirs(x).numpy())
    ours.reparameterize()
    assert not any("dbb_origin" in k for k in ours.state_dict())
    assert sum("dbb_reparam.bias" in k for k in ours.state_dict()) == 16  # 8 blocks x 2 convs
    deployed = ours(x).numpy()
    assert np.abs(trained).max() > 0.05
    np.testing.assert_allclose(deployed, trained, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_resnet18_dbb_converts_to_paddleclas_names_and_shapes():
    from paddle_resnet import build_model
    from paddle_resnet.weights.keymaps import to_paddleclas_names
    theirs = paddleclas_resnet18_dbb().state_dict()
    ours = build_model("ResNet18", num_classes=CLASS_NUM, layer_type="DiverseBranchBlock", project_stage1=False)
    renamed = to_paddleclas_names(ours.state_dict())
    assert sorted((k, tuple(v.shape)) for k, v in renamed.items()) == \
        sorted((k, tuple(v.shape)) for k, v in theirs.items())


def test_dbb_config_keys_and_refusals():
    from paddle_resnet.models import check_build_args
    with pytest.raises(ConfigError) as error:
        check_build_args("ResNet50", layer_type="DiverseBranchBlock")
    assert str(error.value) == ("layer_type DiverseBranchBlock needs BasicBlock depth (18, 34) (PaddleClas publishes "
                                "ResNet18_dbb only; its padded BNs are NCHW only), got depth 50, preact=False, "
                                "data_format NCHW, zero_init_residual=False")
    with pytest.raises(ConfigError, match=r"^layer_type 'DBB' is not supported; choose one of ConvBNLayer, "
                                          r"DiverseBranchBlock"):
        check_build_args("ResNet18", layer_type="DBB")


@pytest.mark.slow
def test_resnet18_dbb_recipe_trains_and_exports_the_reparameterised_model(tmp_path, folders):
    from skimage import data
    from engine_fixtures import tiny_config
    from paddle_resnet.config import validate
    from paddle_resnet.deploy import Predictor
    from paddle_resnet.engine import Engine
    config = validate(tiny_config(tmp_path, *folders, Global={
        "epochs": 1, "output_dir": str(tmp_path / "out"), "device": "cpu", "image_shape": [3, 16, 16],
        "print_batch_step": 1, "use_visualdl": False}, Arch={"name": "ResNet18", "class_num": 3,
                                                             "layer_type": "DiverseBranchBlock",
                                                             "use_first_short_conv": False}))
    assert config["Arch"]["project_stage1"] is False
    engine = Engine(config)
    engine.train()
    engine.export(str(tmp_path / "inference"), onnx=False)
    predictor = Predictor(str(tmp_path / "inference"), backend="paddle", warmup=0)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((16, 16), Image.BILINEAR))
    batch = predictor.preprocess([photo])
    engine.model.eval()
    assert any("dbb_origin" in k for k in engine.model.state_dict())  # the trained model keeps its branches
    expected = paddle.nn.functional.softmax(engine.model(paddle.to_tensor(batch))).numpy()
    np.testing.assert_allclose(predictor.run(batch), expected, rtol=0, atol=1e-5)
