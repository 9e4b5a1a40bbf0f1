"""Every architecture by name, and :func:`build_model`, which builds any of them from a config, a preset
name or a dict, like torchvision's ``get_model``. Plain PyTorch; never imports Django.

    from ml.models.registry import build_model
    model = build_model("tiny")                                   # a preset of ml.models.config
    model = build_model(config.model, load_pretrained=False)      # to load a checkpoint into

:data:`ARCHITECTURES` maps each ``ModelConfig.arch`` to the class built for it; :data:`MODEL_BUILDERS`
maps the public builder functions (torchvision style) to their names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ml.models.backbones import mobilenet_v2, mobilenet_v2_classifier
from ml.models.cascade import CascadeNet, cascade_43, cascade_55, cascade_baseline, cascade_net, cascade_refined
from ml.models.config import ModelConfig, model_config
from ml.models.unet import UNet, unet_mobilenet_v2

__all__ = ["ARCHITECTURES", "MODEL_BUILDERS", "build_model", "get_builder"]

#: ``ModelConfig.arch`` -> the class that builds it from ``(config, load_pretrained=...)``.
ARCHITECTURES: dict[str, type[nn.Module]] = {"cascade": CascadeNet, "baseline": CascadeNet, "unet": UNet}

#: The builder functions by name (each takes keyword overrides of its default config or weights).
MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    builder.__name__: builder
    for builder in (cascade_net, cascade_55, cascade_43, cascade_refined, cascade_baseline, unet_mobilenet_v2,
                    mobilenet_v2, mobilenet_v2_classifier)
}


def get_builder(name: str) -> Callable[..., nn.Module]:
    """The builder function called ``name`` (e.g. "cascade_43", "unet_mobilenet_v2")."""
    try:
        return MODEL_BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model builder {name!r}; known: {', '.join(sorted(MODEL_BUILDERS))}") from None


def build_model(config: ModelConfig | Mapping[str, Any] | str | None = None, *, load_pretrained: bool = True,
                **overrides: Any) -> nn.Module:
    """Any architecture from a config / preset / dict (see :func:`ml.models.config.model_config`).
    ``load_pretrained=False``: same architecture and normalisation, weight files not read (to load a
    checkpoint into)."""
    config = model_config(config, **overrides)
    return ARCHITECTURES[config.arch](config, load_pretrained=load_pretrained)
