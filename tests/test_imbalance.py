"""Class imbalance: class_weights (auto = scikit-learn's "balanced"), FocalLoss, ClassBalancedSampler, and
split_dataset.py's class histogram and skew warning."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from PIL import Image
from sklearn.utils.class_weight import compute_class_weight

from engine_fixtures import make_image_folder, tiny_config
from paddle_resnet.cli.split_dataset import main as split_main
from paddle_resnet.config import ConfigError, validate
from paddle_resnet.data.batch_ops import MixupLabels
from paddle_resnet.data.loader import ClassBalancedSampler
from paddle_resnet.engine import Engine
from paddle_resnet.engine.losses import balanced_class_weights, build_loss


def logits_and_labels(n=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return (paddle.to_tensor(rng.normal(size=(n, classes)).astype("float32")),
            paddle.to_tensor(rng.integers(0, classes, n)))


def test_auto_weights_are_scikit_learns_balanced_weights():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20 + [3] * 1)
    oracle = compute_class_weight("balanced", classes=np.arange(4), y=labels)
    np.testing.assert_allclose(balanced_class_weights(np.bincount(labels)), oracle)
    assert balanced_class_weights([4, 0, 4]).tolist() == [pytest.approx(2 / 3), 0.0, pytest.approx(2 / 3)]


def test_weighted_cross_entropy_is_paddles_weighted_cross_entropy(caplog):
    logits, labels = logits_and_labels()
    weights = [0.5, 2.0, 1.0, 4.0]
    loss = build_loss([{"CELoss": {"class_weights": weights}}])
    expected = F.cross_entropy(logits, labels, weight=paddle.to_tensor(weights))
    assert float(loss(logits, labels)) == pytest.approx(float(expected), rel=1e-6)
    per_image = F.cross_entropy(logits, labels, reduction="none").numpy().reshape(-1)
    assert float(loss(logits, labels, reduction="sum")) == pytest.approx(
        float((per_image * np.array(weights)[labels.numpy()]).sum()), rel=1e-6)
    caplog.set_level("INFO", logger="paddle_resnet")
    auto = build_loss([{"CELoss": {"class_weights": "auto"}}], class_counts=[30, 10, 0, 60],
                      class_names=["cat", "dog", "eel", "owl"])
    assert "CELoss class_weights auto (inverse class frequency of the Train set): cat 0.833, dog 2.5, eel 0, " \
           "owl 0.417" in caplog.text
    auto_weights = paddle.to_tensor([100 / 120, 100 / 40, 0.0, 100 / 240])
    assert float(auto(logits, labels)) == pytest.approx(
        float(F.cross_entropy(logits, labels, weight=auto_weights)), rel=1e-6)


def test_focal_loss_is_cross_entropy_at_gamma_0_and_down_weights_easy_images():
    logits, labels = logits_and_labels()
    plain = float(F.cross_entropy(logits, labels))
    assert float(build_loss([{"FocalLoss": {"gamma": 0}}])(logits, labels)) == pytest.approx(plain, rel=1e-6)
    p = F.softmax(logits, axis=1).numpy()[np.arange(12), labels.numpy()]
    expected = np.mean(-(1 - p) ** 2 * np.log(p))
    assert float(build_loss([{"FocalLoss": {}}])(logits, labels)) == pytest.approx(expected, rel=1e-5)
    mixed = MixupLabels(labels, paddle.to_tensor(np.roll(labels.numpy(), 1)), 0.7)
    soft = 0.7 * np.eye(4)[labels.numpy()] + 0.3 * np.eye(4)[np.roll(labels.numpy(), 1)]
    all_p = F.softmax(logits, axis=1).numpy()
    expected_mixed = np.mean((-soft * (1 - all_p) ** 2 * np.log(all_p)).sum(axis=1))
    assert float(build_loss([{"FocalLoss": {}}])(logits, mixed)) == pytest.approx(expected_mixed, rel=1e-5)


@pytest.mark.parametrize("change,message", [
    ({"Loss": {"Train": [{"CELoss": {"class_weights": "balanced"}}]}},
     "Loss.Train.CELoss.class_weights must be auto or a list of one number >= 0 per class (not all 0), got 'balanced'"),
    ({"Loss": {"Train": [{"CELoss": {"class_weights": [1, 2]}}]}},
     "Loss.Train.CELoss.class_weights has 2 numbers but Arch.class_num is 3: give one per class, or auto"),
    ({"Loss": {"Eval": [{"CELoss": {"class_weights": "auto"}}]}},
     "Loss.Eval.CELoss.class_weights: class weights are for training (Loss.Train); the Eval loss, which best and "
     "early stopping may use, stays unweighted"),
    ({"Loss": {"Train": [{"FocalLoss": {"gama": 2}}]}}, "unknown key Loss.Train.FocalLoss.gama; did you mean 'gamma'?"),
    ({"sampler": {"name": "ClassBalancedSampler", "power": 1.5}},
     "DataLoader.Train.sampler.power must be a number >= 0 and <= 1, got 1.5"),
    ({"sampler": {"power": 0.5}}, "DataLoader.Train.sampler.power is ClassBalancedSampler's; "
                                  "DataLoader.Train.sampler.name is DistributedBatchSampler"),
    ({"eval_sampler": {"name": "ClassBalancedSampler"}},
     "DataLoader.Eval.sampler.name: ClassBalancedSampler draws images at random, for training; evaluation sees "
     "every image once (DistributedBatchSampler)"),
])
def test_bad_imbalance_settings_are_one_line(tmp_path, change, message):
    config = tiny_config(tmp_path, tmp_path, tmp_path, **{k: v for k, v in change.items() if k == "Loss"})
    if "sampler" in change:
        config["DataLoader"]["Train"]["sampler"].update(change["sampler"])
    if "eval_sampler" in change:
        config["DataLoader"]["Eval"]["sampler"].update(change["eval_sampler"])
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value) == message


class Labels:
    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def __len__(self):
        return len(self.labels)


def drawn(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return [i for batch in sampler for i in batch]


def test_the_balanced_sampler_evens_the_classes_by_power_seeded_and_sharded():
    data = Labels([0] * 900 + [1] * 90 + [2] * 10)
    shares = {power: np.bincount(data.labels[drawn(ClassBalancedSampler(data, 50, power=power))], minlength=3) / 1000
              for power in (0.0, 0.5, 1.0)}
    assert shares[0.0] == pytest.approx([0.9, 0.09, 0.01], abs=0.03)
    assert shares[1.0] == pytest.approx([1 / 3] * 3, abs=0.05)
    expected_half = np.sqrt([900, 90, 10]) / np.sqrt([900, 90, 10]).sum()  # n_c * n_c^-0.5
    assert shares[0.5] == pytest.approx(expected_half, abs=0.04)
    whole = drawn(ClassBalancedSampler(data, 50, seed=3))
    assert whole == drawn(ClassBalancedSampler(data, 50, seed=3)) != drawn(ClassBalancedSampler(data, 50, seed=3), 1)
    ranks = [drawn(ClassBalancedSampler(data, 25, num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == sorted(whole) and len(ranks[0]) == len(ranks[1]) == 500
    resumed = ClassBalancedSampler(data, 50, seed=3)
    resumed.skip = 4  # what Loader.resume_at sets: the batches an interrupted pass had taken
    assert drawn(resumed) == whole[200:]


def test_split_dataset_prints_the_class_histogram_and_warns_on_skew(tmp_path, capsys):
    for name, count in (("common", 60), ("rare", 4)):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (4, 4)).save(tmp_path / "src" / name / f"{i}.png")
    split_main(["--src", str(tmp_path / "src"), "--val-ratio", "0.25"], prog="split_dataset.py")
    out, err = capsys.readouterr()
    assert out.splitlines()[:3] == ["  class    train    val",
                                    "  common      45     15  " + "#" * 40,
                                    "  rare         3      1  ###"]
    assert err.splitlines()[0] == (
        "split_dataset.py: warning: the classes are imbalanced: 'common' has 60 images, 'rare' 4 (15.0x); consider "
        "Loss.Train CELoss class_weights: auto, FocalLoss, or DataLoader.Train.sampler.name: ClassBalancedSampler "
        "(docs/training.md, class imbalance)")


@pytest.mark.slow
def test_a_run_with_focal_loss_auto_weights_and_the_balanced_sampler(tmp_path, caplog):
    train = make_image_folder(tmp_path / "train")
    for extra in list((tmp_path / "train" / "class0").iterdir())[2:]:
        extra.unlink()  # class0 keeps 2 of its 8 images
    config = tiny_config(tmp_path, train, train, Global={"epochs": 1},
                         Loss={"Train": [{"FocalLoss": {"gamma": 2.0, "class_weights": "auto"}}]})
    config["DataLoader"]["Train"]["sampler"].update(name="ClassBalancedSampler", power=1.0)
    result = Engine(validate(config)).train()
    log = (tmp_path / "out" / "train.log").read_text()
    assert "FocalLoss class_weights auto (inverse class frequency of the Train set): class0 3, class1 0.75, " \
           "class2 0.75" in log
    assert "step 3/3" in log and result["best_epoch"] == 1  # 18 draws, batch 8: 3 steps
