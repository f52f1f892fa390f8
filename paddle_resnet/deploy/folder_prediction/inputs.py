"""The files a folder prediction reads: a lazy walk in a fixed order, input lists, one shard per rank."""
import glob
import itertools
import logging
import os

from ...data.datasets import is_image_file

logger = logging.getLogger(__name__)


def walk_images(root):
    """Image files under ``root``, recursively and lazily, names sorted within each folder. A name with an
    image extension is taken even if it cannot be opened (a broken link), so that its error is reported."""
    try:
        with os.scandir(root) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        logger.warning("skipping the folder %s: %s", root, error.strerror)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_images(entry.path)
        elif is_image_file(entry.name) and not _links_to_folder(entry):
            yield entry.path  # a FIFO or device too: its record says why it is not read


def _links_to_folder(entry):
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: reported as the file's error
        return False


class InputFiles:
    """The files ``--input`` names, in one fixed order, iterable any number of times: a file (whatever its
    name), the image files under a folder (walked lazily), or the image files a glob matches (sorted)."""

    def __init__(self, pattern):
        self.pattern = os.fspath(pattern)

    def __iter__(self):
        if os.path.isfile(self.pattern):
            return iter([self.pattern])
        if os.path.isdir(self.pattern):
            return walk_images(self.pattern)
        return (path for path in sorted(glob.glob(self.pattern, recursive=True))
                if os.path.isfile(path) and is_image_file(path))

    def is_empty(self):
        return next(iter(self), None) is None


def walk_order(path):
    """Sort key that gives the order of ``walk_images`` (names compared folder level by folder level)."""
    return path.split(os.sep)


def shard(paths, rank, world_size):
    return itertools.islice(paths, rank, None, world_size)


def chunks(items, size):
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
