"""PaddleClas's model names as aliases of registered rows: ``Arch.name: ResNet50_vd`` builds ``resnet50_vd``.

An alias is a registered name plus the arguments that give PaddleClas's exact parameter layout (same
tensors, same shapes, same forward pass): its ResNet18/34 (and ``_vd``) give the first block of stage 1 a
projection shortcut (``project_stage1``); its ResNeXt ``_vd`` models are ResNeXt rows with the ResNet-D stem
and shortcuts; ResNeXt depths and widths we do not register are the plain depth rows with ``groups`` and
``base_width``. ``tests/test_paddleclas.py`` checks every alias against the parameter shapes of PaddleClas
2.6.0's own classes (``tests/fixtures/paddleclas/arch_shapes.json``).

PaddleClas's ``ResNet200_vd`` has stages of 3, 12, 48, 3 blocks: it builds ``resnet200_vd_paddleclas``; our
``resnet200`` and ``resnet200_vd`` rows follow timm and torch (3, 24, 36, 3; timm's resnet200d).
"""

_VD = {"stem_type": "deep", "avg_down": True}


PADDLECLAS_ALIASES = {
    "ResNet18": ("resnet18", {"project_stage1": True}),
    "ResNet18_vd": ("resnet18_vd", {"project_stage1": True}),
    "ResNet34": ("resnet34", {"project_stage1": True}),
    "ResNet34_vd": ("resnet34_vd", {"project_stage1": True}),
    "ResNet50": ("resnet50", {}),
    "ResNet50_vd": ("resnet50_vd", {}),
    "ResNet101": ("resnet101", {}),
    "ResNet101_vd": ("resnet101_vd", {}),
    "ResNet152": ("resnet152", {}),
    "ResNet152_vd": ("resnet152_vd", {}),
    "ResNet200_vd": ("resnet200_vd_paddleclas", {}),
}
_REGISTERED_RESNEXT = ("resnext50_32x4d", "resnext101_32x4d", "resnext101_64x4d")
for _depth in (50, 101, 152):
    for _groups in (32, 64):
        _ours = f"resnext{_depth}_{_groups}x4d"
        _row = (_ours, {}) if _ours in _REGISTERED_RESNEXT else (f"resnet{_depth}", {"groups": _groups,
                                                                                    "base_width": 4})
        PADDLECLAS_ALIASES[f"ResNeXt{_depth}_{_groups}x4d"] = _row
        PADDLECLAS_ALIASES[f"ResNeXt{_depth}_vd_{_groups}x4d"] = (_row[0], {**_row[1], **_VD})


def resolve_alias(name):
    """``(registered name, extra arguments)`` for a PaddleClas name, or None for any other name."""
    entry = PADDLECLAS_ALIASES.get(name) if isinstance(name, str) else None
    return (entry[0], dict(entry[1])) if entry else None


def describe_alias(name):
    """``"resnet18_vd (project_stage1=True)"``: what a PaddleClas name builds."""
    target, args = PADDLECLAS_ALIASES[name]
    options = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"{target} ({options})" if options else target
