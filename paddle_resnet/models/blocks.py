"""Residual blocks (v1 and pre-activation v2) and the shortcut builder.

Layer names follow paddle.vision (conv1, bn1, ..., downsample) so checkpoints
from paddle.vision, torchvision and timm map onto them key for key.
"""
import paddle
import paddle.nn as nn


def conv(in_ch, out_ch, kernel, stride=1, groups=1, data_format="NCHW"):
    """Bias-free conv with "same" padding, initialised once with He normal (fan_out), as torchvision does."""
    init = paddle.ParamAttr(initializer=nn.initializer.KaimingNormal(nonlinearity="relu", mode="fan_out"))
    return nn.Conv2D(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups,
                     weight_attr=init, bias_attr=False, data_format=data_format)


def conv3x3(in_ch, out_ch, stride=1, groups=1, data_format="NCHW"):
    return conv(in_ch, out_ch, 3, stride, groups, data_format)


def conv1x1(in_ch, out_ch, stride=1, data_format="NCHW"):
    return conv(in_ch, out_ch, 1, stride, data_format=data_format)


def make_shortcut(in_ch, out_ch, stride, avg_down=False, preact=False, data_format="NCHW"):
    """Projection shortcut, or None where the identity fits.

    v1:        [conv1x1(stride), BN]                       -> downsample.0 / .1
    avg_down:  [AvgPool 2x2 ceil (Identity if stride 1), conv1x1, BN]  -> .1 / .2 (timm, ResNet-D)
    preact:    [conv1x1(stride)] on the pre-activated input, no BN (He et al. 2016, timm resnetv2)
    """
    layers = []
    conv_stride = stride
    if avg_down:
        # ceil_mode + exclusive averaging keeps odd feature maps whole (count_include_pad=False in torch).
        layers.append(nn.AvgPool2D(2, stride, ceil_mode=True, exclusive=True, data_format=data_format)
                      if stride > 1 else nn.Identity())
        conv_stride = 1
    layers.append(conv1x1(in_ch, out_ch, conv_stride, data_format))
    if not preact:
        layers.append(nn.BatchNorm2D(out_ch, data_format=data_format))
    return nn.Sequential(*layers)


class BasicBlock(nn.Layer):
    expansion = 1

    def __init__(self, in_ch, planes, stride=1, downsample=None, groups=1, base_width=64,
                 data_format="NCHW"):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and base_width=64; "
                             "use a bottleneck depth (50, 101, 152, 200) for ResNeXt or wide models")
        self.conv1 = conv3x3(in_ch, planes, stride, data_format=data_format)
        self.bn1 = nn.BatchNorm2D(planes, data_format=data_format)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes, data_format=data_format)
        self.bn2 = nn.BatchNorm2D(planes, data_format=data_format)
        self.downsample = downsample

    def last_norm(self):
        return self.bn2

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class BottleneckBlock(nn.Layer):
    """1x1 -> 3x3 (stride, groups) -> 1x1, stride on the 3x3 as in torchvision / paddle.vision ("v1.5")."""
    expansion = 4

    def __init__(self, in_ch, planes, stride=1, downsample=None, groups=1, base_width=64,
                 data_format="NCHW"):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(in_ch, width, data_format=data_format)
        self.bn1 = nn.BatchNorm2D(width, data_format=data_format)
        self.conv2 = conv3x3(width, width, stride, groups, data_format)
        self.bn2 = nn.BatchNorm2D(width, data_format=data_format)
        self.conv3 = conv1x1(width, planes * self.expansion, data_format=data_format)
        self.bn3 = nn.BatchNorm2D(planes * self.expansion, data_format=data_format)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def last_norm(self):
        return self.bn3

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


class PreActBasicBlock(nn.Layer):
    """BN-ReLU before each conv; the projection shortcut sees the pre-activated input."""
    expansion = 1

    def __init__(self, in_ch, planes, stride=1, downsample=None, groups=1, base_width=64,
                 data_format="NCHW"):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("PreActBasicBlock supports only groups=1 and base_width=64")
        self.bn1 = nn.BatchNorm2D(in_ch, data_format=data_format)
        self.conv1 = conv3x3(in_ch, planes, stride, data_format=data_format)
        self.bn2 = nn.BatchNorm2D(planes, data_format=data_format)
        self.conv2 = conv3x3(planes, planes, data_format=data_format)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def last_conv(self):
        return self.conv2

    def forward(self, x):
        preact = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(preact)
        out = self.conv1(preact)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneckBlock(nn.Layer):
    expansion = 4

    def __init__(self, in_ch, planes, stride=1, downsample=None, groups=1, base_width=64,
                 data_format="NCHW"):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.bn1 = nn.BatchNorm2D(in_ch, data_format=data_format)
        self.conv1 = conv1x1(in_ch, width, data_format=data_format)
        self.bn2 = nn.BatchNorm2D(width, data_format=data_format)
        self.conv2 = conv3x3(width, width, stride, groups, data_format)
        self.bn3 = nn.BatchNorm2D(width, data_format=data_format)
        self.conv3 = conv1x1(width, planes * self.expansion, data_format=data_format)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def last_conv(self):
        return self.conv3

    def forward(self, x):
        preact = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(preact)
        out = self.conv1(preact)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): BottleneckBlock,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneckBlock,
}
