"""Diverse Branch Block (Ding et al. 2021, arXiv:2103.13425) as PaddleClas's ResNet18_dbb builds it.

A ``DiverseBranchConv`` trains four branches in place of one kxk conv + BN, and re-parameterises into one kxk
conv with bias for deployment (``reparameterize``): same outputs up to float rounding.

    dbb_origin   kxk conv, BN
    dbb_1x1      1x1 conv (stride), BN
    dbb_avg      1x1 conv, BN padded with its own value at 0, kxk average pool (stride), BN ("avgbn")
    dbb_1x1_kxk  1x1 identity-initialised conv, BN padded likewise, kxk conv (stride, no padding), BN

Sub-layer names are PaddleClas's (ppcls/arch/backbone/base/dbb/dbb_block.py), so its checkpoints load with the
block renaming of weights/keymaps.py alone. Two PaddleClas behaviours are kept:

* the padded BNs (``PaddedNorm``) are built with ``momentum=0.1``, which in Paddle's convention (the weight of
  the old running statistics) makes them follow the last batch almost entirely (a PyTorch value ported
  unchanged); only training statistics are affected;
* while training, the padding value uses the running statistics while the BN output uses the batch's.

PaddleClas's identity 1x1 conv adds a float64 identity to a float32 kernel, which Paddle 3 refuses at the first
forward pass; here the identity is float32. Only ``groups=1`` (what ResNet uses) is built.
"""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["DiverseBranchConv", "DBBBasicBlock", "reparameterize"]

PADDED_BN_MOMENTUM = 0.1  # PaddleClas's BNAndPad (see the module docstring)


def _conv_bn(in_ch, out_ch, kernel, stride=1, padding=0):
    layers = nn.Sequential()
    layers.add_sublayer("conv", nn.Conv2D(in_ch, out_ch, kernel, stride=stride, padding=padding, bias_attr=False))
    layers.add_sublayer("bn", nn.BatchNorm2D(out_ch))
    return layers


class IdentityConv1x1(nn.Layer):
    """1x1 conv whose kernel is ``weight + I`` (``weight`` starts at zero): the identity, trainable."""

    def __init__(self, channels):
        super().__init__()
        self.weight = self.create_parameter([channels, channels, 1, 1],
                                            default_initializer=nn.initializer.Constant(0.0))
        self.register_buffer("identity", paddle.eye(channels, dtype="float32").reshape([channels, channels, 1, 1]),
                             persistable=False)

    def kernel(self):
        return self.weight + self.identity

    def forward(self, x):
        return F.conv2d(x, self.kernel())


class PaddedNorm(nn.Layer):
    """BN, then ``pad`` pixels on each side filled with the value the BN gives a zero input, per channel (so a
    following unpadded conv sees what a padded conv of the pre-BN input would): PaddleClas's BNAndPad."""

    def __init__(self, channels, pad):
        super().__init__()
        self.bn = nn.BatchNorm2D(channels, momentum=PADDED_BN_MOMENTUM, epsilon=1e-5)
        self.pad = pad

    def pad_values(self):
        bn = self.bn
        if not paddle.in_dynamic_mode():
            # A static program (Global.to_static) cannot do arithmetic on the BN's tensors outside an op: the
            # same value as the BN of a zero pixel (rounding may differ in the last bit from the line below).
            zero = paddle.zeros([1, bn.weight.shape[0], 1, 1], dtype=bn.weight.dtype)
            return F.batch_norm(zero, bn._mean, bn._variance, bn.weight, bn.bias, training=False,
                                epsilon=bn._epsilon).reshape([-1])
        return bn.bias + bn.weight * (-bn._mean / paddle.sqrt(bn._variance + bn._epsilon))  # PaddleClas's

    def forward(self, x):
        out = self.bn(x)
        if self.pad == 0:
            return out
        values = self.pad_values().reshape([1, -1, 1, 1])
        rows = paddle.zeros_like(out[:, :, :self.pad, :]) + values  # 0 + v is v: the values exactly
        out = paddle.concat([rows, out, rows], axis=2)
        cols = paddle.zeros_like(out[:, :, :, :self.pad]) + values
        return paddle.concat([cols, out, cols], axis=3)


class DiverseBranchConv(nn.Layer):
    """kxk conv + BN (+ ReLU with ``act``) trained as four branches; ``reparameterize()`` folds them into
    ``dbb_reparam``, one kxk conv with bias."""

    def __init__(self, in_ch, out_ch, kernel=3, stride=1, act=False):
        super().__init__()
        pad = kernel // 2
        self.kernel_size, self.stride, self.act = kernel, stride, act
        self.dbb_origin = _conv_bn(in_ch, out_ch, kernel, stride, pad)
        self.dbb_avg = nn.Sequential()
        self.dbb_avg.add_sublayer("conv", nn.Conv2D(in_ch, out_ch, 1, bias_attr=False))
        self.dbb_avg.add_sublayer("bn", PaddedNorm(out_ch, pad))
        self.dbb_avg.add_sublayer("avg", nn.AvgPool2D(kernel, stride=stride, padding=0))
        self.dbb_avg.add_sublayer("avgbn", nn.BatchNorm2D(out_ch))
        self.dbb_1x1 = _conv_bn(in_ch, out_ch, 1, stride)
        self.dbb_1x1_kxk = nn.Sequential()
        self.dbb_1x1_kxk.add_sublayer("idconv1", IdentityConv1x1(in_ch))
        self.dbb_1x1_kxk.add_sublayer("bn1", PaddedNorm(in_ch, pad))
        self.dbb_1x1_kxk.add_sublayer("conv2", nn.Conv2D(in_ch, out_ch, kernel, stride=stride, bias_attr=False))
        self.dbb_1x1_kxk.add_sublayer("bn2", nn.BatchNorm2D(out_ch))
        self.dbb_reparam = None

    def forward(self, x):
        if self.dbb_reparam is not None:
            out = self.dbb_reparam(x)
        else:  # PaddleClas's order of the sums
            out = self.dbb_origin(x)
            out += self.dbb_1x1(x)
            out += self.dbb_avg(x)
            out += self.dbb_1x1_kxk(x)
        return F.relu(out) if self.act else out

    def equivalent_kernel_bias(self):
        """(kernel [out, in, k, k], bias [out]) float64 numpy: the four branches as one conv (eval mode)."""
        k = self.kernel_size
        origin = _fuse(_np(self.dbb_origin.conv.weight), self.dbb_origin.bn)
        one = _fuse(_np(self.dbb_1x1.conv.weight), self.dbb_1x1.bn)
        one = (np.pad(one[0], [(0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)]), one[1])
        chain = self.dbb_1x1_kxk
        first = _fuse(_np(chain.idconv1.kernel()), chain.bn1.bn)
        kxk = _merge_1x1_kxk(first, _fuse(_np(chain.conv2.weight), chain.bn2))
        out_ch = origin[0].shape[0]
        average = np.zeros((out_ch, out_ch, k, k))
        average[np.arange(out_ch), np.arange(out_ch)] = 1.0 / k ** 2
        avg = _merge_1x1_kxk(_fuse(_np(self.dbb_avg.conv.weight), self.dbb_avg.bn.bn),
                             _fuse(average, self.dbb_avg.avgbn))
        branches = (origin, one, kxk, avg)
        return sum(b[0] for b in branches), sum(b[1] for b in branches)

    def reparameterize(self):
        if self.dbb_reparam is not None:
            return
        kernel, bias = self.equivalent_kernel_bias()
        conv = nn.Conv2D(kernel.shape[1], kernel.shape[0], self.kernel_size, stride=self.stride,
                         padding=self.kernel_size // 2)
        conv.weight.set_value(kernel.astype(np.float32))
        conv.bias.set_value(bias.astype(np.float32))
        for name in ("dbb_origin", "dbb_avg", "dbb_1x1", "dbb_1x1_kxk"):
            delattr(self, name)
        self.dbb_reparam = conv


def _np(tensor):
    return tensor.numpy().astype(np.float64)


def _fuse(kernel, bn):
    """conv kernel followed by BN (eval) -> (kernel, bias)."""
    scale = _np(bn.weight) / np.sqrt(_np(bn._variance) + bn._epsilon)
    return kernel * scale.reshape(-1, 1, 1, 1), _np(bn.bias) - _np(bn._mean) * scale


def _merge_1x1_kxk(first, second):
    """1x1 conv (k1 [m, i], bias b1) then kxk conv (k2 [o, m, k, k], b2) on b1-padded input -> one kxk conv."""
    (k1, b1), (k2, b2) = first, second
    kernel = np.tensordot(k2, k1[:, :, 0, 0], axes=([1], [0])).transpose(0, 3, 1, 2)  # o,h,w,i -> o,i,h,w
    return kernel, np.einsum("omhw,m->o", k2, b1) + b2


def reparameterize(model):
    """Every DiverseBranchConv of ``model`` folded into one conv (in place); returns ``model``."""
    for layer in model.sublayers():
        if isinstance(layer, DiverseBranchConv):
            layer.reparameterize()
    return model


class DBBBasicBlock(nn.Layer):
    """ResNet BasicBlock with both 3x3 conv + BN pairs as DiverseBranchConv (PaddleClas: conv0, conv1)."""
    expansion = 1

    def __init__(self, in_ch, planes, stride=1, downsample=None, groups=1, base_width=64, data_format="NCHW"):
        super().__init__()
        if groups != 1 or base_width != 64 or data_format != "NCHW":
            raise ValueError("DiverseBranchBlock is built for groups=1, base_width=64 and NCHW")
        self.conv1 = DiverseBranchConv(in_ch, planes, 3, stride, act=True)
        self.conv2 = DiverseBranchConv(planes, planes, 3, 1)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + shortcut)
