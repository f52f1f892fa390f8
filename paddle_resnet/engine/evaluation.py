"""Evaluation: top-k accuracy, mean loss and the per-class figures over a whole Eval set, on one process or
shared by several; with a ``PredictionLog``, each image's top classes too (the report's)."""
import numpy as np
import paddle
import paddle.distributed as dist
import paddle.nn.functional as F

from ..errors import InputError
from .logger import eval_progress
from .metrics import topk_correct
from .report import Predictions, averaged_metrics

REPORT_TOPK = 5  # classes kept per image for the report (fewer when the model has fewer)


class Evaluator:
    """``topk``: the accuracies to report (1 among them); ``loss``: the Eval loss (losses.build_loss);
    ``class_num``: the model's classes, for the counts per class behind macro_f1 and the other averages."""

    def __init__(self, topk, loss, rank=0, world_size=1, class_num=None):
        self.topk, self.loss, self.rank, self.world_size = tuple(topk), loss, rank, world_size
        self.class_num = class_num

    @paddle.no_grad()
    def evaluate(self, loader, model, log=None):
        """Under paddle.distributed each rank reads its own unpadded share and the sums are all-reduced, so every
        sample counts exactly once. ``log``: a PredictionLog, with ``loader`` one of sample indices
        (build_dataloader(..., sample_indices=True)), that keeps every image's top classes."""
        was_training = model.training
        model.eval()
        loss_sum, seen, skipped = 0.0, 0, 0
        correct = {k: 0 for k in self.topk}
        classes = self.class_num or 0
        per_class = np.zeros(3 * classes, dtype=np.float64)  # hits, predicted, support of each class
        for images, targets, n_skipped in eval_progress(loader, self.rank == 0):
            skipped += n_skipped
            labels = targets if log is None else log.labels_of(targets)
            logits = model(images).astype("float32")
            loss_sum += float(self.loss(logits, labels, reduction="sum"))
            for k, n in topk_correct(logits, labels, self.topk).items():
                correct[k] += n
            seen += labels.shape[0]
            if classes:
                truth, predicted = labels.numpy().reshape(-1), logits.argmax(axis=1).numpy()
                per_class += np.concatenate([np.bincount(truth[truth == predicted], minlength=classes),
                                             np.bincount(predicted, minlength=classes),
                                             np.bincount(truth, minlength=classes)])
            if log is not None:
                log.add(targets, logits)
        model.train(was_training)
        totals = paddle.to_tensor(np.concatenate([[loss_sum, seen, skipped], [correct[k] for k in self.topk],
                                                  per_class]), dtype="float64")
        if self.world_size > 1:
            dist.all_reduce(totals)
        totals = totals.numpy()
        loss_sum, seen, skipped = totals[:3].tolist()
        hits = totals[3:3 + len(self.topk)].tolist()
        if seen == 0:
            raise InputError("the Eval set gave no image to evaluate; check DataLoader.Eval.dataset")
        result = {f"top{k}": n / seen for k, n in zip(self.topk, hits)}
        result.update(loss=loss_sum / seen, samples=int(seen), skipped=int(skipped))
        if classes:
            averages = averaged_metrics(*np.rint(totals[3 + len(self.topk):]).astype(np.int64).reshape(3, classes))
            result.update(macro_f1=averages["macro_f1"], weighted_f1=averages["weighted_f1"],
                          macro_recall=averages["macro_recall"])
        return result


class PredictionLog:
    """Each image's top classes and probabilities as an eval goes, for the report (``predictions()``)."""

    def __init__(self, dataset, k=REPORT_TOPK):
        self.paths = [path for path, _ in dataset.samples]
        self.all_labels = np.asarray(dataset.labels, dtype=np.int64)
        self.k = k
        self.indices, self.topk_ids, self.topk_scores, self.true_scores = [], [], [], []

    def labels_of(self, indices):
        return paddle.to_tensor(self.all_labels[indices.numpy().reshape(-1)])

    def add(self, indices, logits):
        indices = indices.numpy().reshape(-1)
        probabilities = F.softmax(logits, axis=1).numpy()
        k = min(self.k, probabilities.shape[1])
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        self.indices.append(indices)
        self.topk_ids.append(top)
        self.topk_scores.append(np.take_along_axis(probabilities, top, axis=1))
        self.true_scores.append(probabilities[np.arange(len(indices)), self.all_labels[indices]])

    def predictions(self, class_names, source=""):
        if not self.indices:
            raise InputError("the Eval set gave no image to report on; check DataLoader.Eval.dataset")
        indices = np.concatenate(self.indices)
        return Predictions(labels=self.all_labels[indices], topk_ids=np.concatenate(self.topk_ids),
                           topk_scores=np.concatenate(self.topk_scores), class_names=list(class_names),
                           paths=[self.paths[i] for i in indices], true_scores=np.concatenate(self.true_scores),
                           source=source)
