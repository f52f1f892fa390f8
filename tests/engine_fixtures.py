"""Small real-file datasets and configs for the engine and tool tests."""
import os

import numpy as np
import yaml
from PIL import Image

NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                                "std": [0.229, 0.224, 0.225], "order": ""}}
EVAL_OPS = [{"DecodeImage": {"to_rgb": True}}, NORMALIZE, {"ToCHWImage": None}]
TRAIN_OPS = [{"DecodeImage": {"to_rgb": True}}, {"RandFlipImage": {"flip_code": 1}}, NORMALIZE, {"ToCHWImage": None}]
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def make_image_folder(root, per_class=8, size=16, seed=0):
    """Three classes told apart by colour, with noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    for label, color in enumerate(COLORS):
        folder = os.path.join(root, f"class{label}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-40, 40, (size, size, 3))
            pixels = np.clip(np.array(color) + noise, 0, 255).astype("uint8")
            Image.fromarray(pixels).save(os.path.join(folder, f"{i:03d}.png"))
    return root


def tiny_config(tmp_path, train_root, eval_root, **sections):
    """A config dict for resnet18 on 16x16 images; ``sections`` update it section by section."""
    config = {
        "Global": {"output_dir": str(tmp_path / "out"), "epochs": 2, "print_batch_step": 1, "device": "cpu",
                   "image_shape": [3, 16, 16], "use_visualdl": False, "save_interval": 1, "speed_warmup_steps": 1},
        "Arch": {"name": "resnet18", "class_num": 3},
        "Optimizer": {"lr": {"name": "Cosine", "learning_rate": 0.05, "warmup_epoch": 0}},
        "DataLoader": {
            "Train": {"dataset": {"name": "ImageFolder", "image_root": str(train_root), "transform_ops": TRAIN_OPS},
                      "sampler": {"batch_size": 8, "shuffle": True}, "loader": {"num_workers": 0}},
            "Eval": {"dataset": {"name": "ImageFolder", "image_root": str(eval_root), "transform_ops": EVAL_OPS},
                     "sampler": {"batch_size": 8, "shuffle": False}, "loader": {"num_workers": 0}},
        },
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def write_config(path, config):
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return str(path)
