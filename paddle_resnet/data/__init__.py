"""Data: PaddleClas-style transforms, ImageFolder / FileList datasets, the data loader, data preparation."""
from .datasets import FileList, ImageFolder, ImageNetDataset, check_same_classes, collate_valid_samples, label_list_for
from .loader import Loader, build_dataloader, build_dataset, check_batches, check_data_paths
from .prepare import prepare_mnist, split_image_folder
from .batch_ops import MixupLabels, MixupOperator
from .pipeline import build_batch_transform, build_transforms, describe_eval_preprocess
from .transforms import Compose

__all__ = ["FileList", "ImageFolder", "ImageNetDataset", "check_same_classes", "label_list_for", "collate_valid_samples", "Loader",
           "build_dataloader", "build_dataset", "check_batches", "check_data_paths", "prepare_mnist", "split_image_folder", "Compose",
           "MixupLabels", "MixupOperator", "build_batch_transform", "build_transforms", "describe_eval_preprocess"]
