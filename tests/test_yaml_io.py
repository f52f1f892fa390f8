"""inference.yml read through the bounded YAML reader (issue 20): alias bombs, duplicate keys and bad values
of an export's config are one line naming the file and the export command, at once."""
import time

import pytest

from paddle_resnet.deploy.model_dir import InferenceConfig, export_command, load_label_names
from paddle_resnet.errors import ConfigError, short_repr
from test_config import alias_bomb

OPS = [{"DecodeImage": {"to_rgb": True}}, {"ToCHWImage": None}]


def write_inference_yml(folder, text):
    """A saved inference.yml, its last line (``label_list: null``) replaced by ``text``."""
    folder.mkdir(exist_ok=True)
    InferenceConfig(transform_ops=OPS, image_shape=(3, 8, 8)).save(folder / "inference.yml")
    saved = (folder / "inference.yml").read_text()
    assert saved.endswith("label_list: null\n")
    (folder / "inference.yml").write_text(saved[:-len("label_list: null\n")] + text)
    return saved.count("\n")  # the line text starts on


def load_error(folder):
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_label_names(folder, InferenceConfig.load(folder))
    assert time.perf_counter() - started < 1
    return str(err.value)


def test_alias_bomb_label_list_is_refused_at_once(tmp_path):
    """Before: load_label_names str()-ed 9**8 shared copies of 324 bytes (gigabytes, minutes)."""
    first = write_inference_yml(tmp_path, "".join(f"x{line}\n" for line in alias_bomb().splitlines())
                                + "label_list: *i\n")
    assert load_error(tmp_path) == (f"{tmp_path / 'inference.yml'}: aliases expand to more than 10,000 nodes (at "
                                    f"line {first + 4}); write the values out instead. Export the model again: "
                                    f"{export_command(tmp_path)}")


def test_duplicate_key_in_inference_yml_names_both_lines(tmp_path):
    first = write_inference_yml(tmp_path, "label_list: [a, b]\nsoftmax: false\n")
    written = (tmp_path / "inference.yml").read_text().splitlines().index("softmax: true") + 1
    assert load_error(tmp_path) == (f"{tmp_path / 'inference.yml'}: duplicate key 'softmax' at lines {written} and "
                                    f"{first + 1}. Export the model again: {export_command(tmp_path)}")


@pytest.mark.parametrize("text, problem", [
    ("label_list: [cat, [1, 2]]\n", "label_list[1] must be a class name, got list [1, 2]"),
    ("label_list: [cat, {a: 1}]\n", "label_list[1] must be a class name, got dict <dict of 1>"),
    ("label_list: " + "x" * 5000 + "\n", "label_list must be a list, got str " + short_repr("x" * 5000)),
], ids=["nested-list", "mapping", "5000-char-string"])
def test_bad_label_list_values_are_bounded_lines(tmp_path, text, problem):
    write_inference_yml(tmp_path, text)
    assert load_error(tmp_path) == (f"{tmp_path / 'inference.yml'} is not a valid inference.yml ({problem}). "
                                    f"Export the model again: {export_command(tmp_path)}")


def test_a_valid_label_list_still_loads(tmp_path):
    write_inference_yml(tmp_path, "label_list: [cat, 7]\n")
    config = InferenceConfig.load(tmp_path)
    assert load_label_names(tmp_path, config) == ["cat", "7"]


def test_inference_yml_linked_to_a_device_is_refused_not_read(tmp_path):
    (tmp_path / "inference.yml").symlink_to("/dev/zero")
    assert load_error(tmp_path) == (f"inference.yml {tmp_path / 'inference.yml'} is not a regular file (a device). "
                                    f"Export the model again: {export_command(tmp_path)}")
