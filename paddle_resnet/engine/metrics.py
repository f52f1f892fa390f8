import paddle


def topk_correct(logits, labels, topk=(1, 5)):
    """Number of samples whose label is among the k highest logits, for each k (capped at the class count)."""
    maxk = min(max(topk), logits.shape[1])
    _, pred = paddle.topk(logits, maxk, axis=1)
    hits = (pred == labels.reshape([-1, 1])).astype("int64")
    return {k: int(hits[:, :min(k, maxk)].sum()) for k in topk}


class Average:
    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, value, n=1):
        self.total += float(value) * n
        self.count += n

    @property
    def value(self):
        return self.total / max(self.count, 1)
