import paddle


class ModelEMA:
    """Exponential moving average of a model's weights, kept in fp32 whatever the training precision.

    BN running statistics are copied, not averaged (they are already running averages).
    """

    def __init__(self, model, decay=0.9999):
        self.decay = decay
        self.shadow = {k: v.astype("float32").clone() for k, v in model.state_dict().items()}
        self.trainable = {name for name, p in model.named_parameters() if not p.stop_gradient}

    @paddle.no_grad()
    def update(self, model):
        for name, value in model.state_dict().items():
            value = value.astype("float32")
            if name in self.trainable:
                self.shadow[name].set_value(self.decay * self.shadow[name] + (1.0 - self.decay) * value)
            else:
                self.shadow[name].set_value(value)

    def state_dict(self):
        return dict(self.shadow)

    def set_state_dict(self, state):
        for name, value in state.items():
            self.shadow[name].set_value(value)
