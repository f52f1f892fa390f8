"""Evaluation: top-k accuracy and mean loss over a whole Eval set, on one process or shared by several."""
import paddle
import paddle.distributed as dist

from ..errors import InputError
from .logger import eval_progress
from .metrics import topk_correct


class Evaluator:
    """``topk``: the accuracies to report (1 among them); ``loss``: the Eval loss (losses.build_loss)."""

    def __init__(self, topk, loss, rank=0, world_size=1):
        self.topk, self.loss, self.rank, self.world_size = tuple(topk), loss, rank, world_size

    @paddle.no_grad()
    def evaluate(self, loader, model):
        """Under paddle.distributed each rank reads its own unpadded share and the sums are all-reduced, so every
        sample counts exactly once."""
        was_training = model.training
        model.eval()
        loss_sum, seen, skipped = 0.0, 0, 0
        correct = {k: 0 for k in self.topk}
        for images, labels, n_skipped in eval_progress(loader, self.rank == 0):
            skipped += n_skipped
            logits = model(images).astype("float32")
            loss_sum += float(self.loss(logits, labels, reduction="sum"))
            for k, n in topk_correct(logits, labels, self.topk).items():
                correct[k] += n
            seen += labels.shape[0]
        model.train(was_training)
        totals = paddle.to_tensor([loss_sum, seen, skipped] + [correct[k] for k in self.topk], dtype="float64")
        if self.world_size > 1:
            dist.all_reduce(totals)
        loss_sum, seen, skipped, *hits = totals.tolist()
        if seen == 0:
            raise InputError("the Eval set gave no image to evaluate; check DataLoader.Eval.dataset")
        result = {f"top{k}": n / seen for k, n in zip(self.topk, hits)}
        result.update(loss=loss_sum / seen, samples=int(seen), skipped=int(skipped))
        return result
