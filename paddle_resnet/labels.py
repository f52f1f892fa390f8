"""Class names: ``class_indices.json`` (``{"0": "daisy", ...}``, what ImageFolder and split_dataset write) and
PaddleClas's class id map (one ``<class id><delimiter><name>`` line per class). Both are files from other people:
read with a size cap, regular files only, every problem naming the file and the line."""
import json
import os

from .errors import InputError, MissingFileError, short_repr
from .fileio import read_regular_file

CLASS_INDICES_FILE = "class_indices.json"
MAX_LABEL_FILE_BYTES = 64 << 20  # a label list of a million classes is ~30 MB


def read_class_indices(path):
    """``{"0": "daisy", "1": "dandelion", ...}`` -> ``["daisy", "dandelion", ...]``."""
    if not os.path.exists(path):
        raise MissingFileError(f"class indices file {os.fspath(path)!r} does not exist")
    try:
        mapping = json.loads(read_regular_file(path, MAX_LABEL_FILE_BYTES, "class indices file"))
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, or nested deeper than Python recurses
        if isinstance(error, InputError):
            raise
        raise InputError(f"{path}: not a JSON file ({str(error)[:200]})") from None
    if not isinstance(mapping, dict) or set(mapping) != {str(i) for i in range(len(mapping))}:
        raise InputError(f"{path}: expected {{\"0\": name, \"1\": name, ...}} with indices 0..N-1")
    return [str(mapping[str(i)]) for i in range(len(mapping))]


def write_class_indices(path, names):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({str(i): name for i, name in enumerate(names)}, f, indent=4, ensure_ascii=False)
        f.write("\n")


def _decode_class_id_map(data, path):
    """UTF-8 (a BOM allowed), else GBK, PaddleClas's fallback."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        try:
            return data.decode("gbk")
        except UnicodeDecodeError:
            raise InputError(f"class id map {path} is neither UTF-8 nor GBK text (byte 0x{data[error.start]:02x} at "
                             f"offset {error.start})") from None


def read_class_id_map(path, delimiter=" ", class_num=None):
    """PaddleClas's class_id_map_file -> names by id. Ids run from 0 to N-1 in any order, blank lines are skipped;
    ``class_num``, when given, is N (the model's class count)."""
    text = _decode_class_id_map(read_regular_file(path, MAX_LABEL_FILE_BYTES, "class id map"), path)
    names = {}
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        class_id, found, name = line.partition(delimiter)
        if not found or not class_id.strip().isdigit() or not class_id.strip().isascii():
            raise InputError(f"{path} line {number}: expected '<class id>{delimiter}<name>', got {short_repr(line)}")
        class_id = int(class_id)
        if class_num is not None and class_id >= class_num:
            raise InputError(f"{path} line {number}: class id {class_id} is outside [0, {class_num}) (Arch.class_num)")
        if class_id in names:
            raise InputError(f"{path} line {number}: class id {class_id} is listed twice")
        names[class_id] = name
    if not names:
        raise InputError(f"{path}: no '<class id>{delimiter}<name>' line")
    count = class_num if class_num is not None else len(names)
    missing = next((i for i in range(count) if i not in names), None)
    if missing is not None:
        raise InputError(f"{path}: class ids must run from 0 to {count - 1} (one line per class); {missing} is "
                         f"missing")
    return [names[i] for i in range(count)]
