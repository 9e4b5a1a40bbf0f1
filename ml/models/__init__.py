"""The segmentation networks, one architecture per module, torchvision style: :mod:`ml.models.mobilenetv2`
(the staged encoder), :mod:`ml.models.cascade` (the paper's cascade and its baseline), :mod:`ml.models.unet`
(the comparison U-Net); :mod:`ml.models.config` (ModelConfig, presets), :mod:`ml.models.outputs` (what every
model returns), :mod:`ml.models.backbones` (MobileNetV2 with pretrained weights), :mod:`ml.models.inference`
(folded inference copies) and :mod:`ml.models.registry` (``build_model``, architectures by name).

This ``__init__`` imports nothing, so that no module of the package imports another in a circle."""
