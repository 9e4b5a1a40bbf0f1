"""Pretrained MobileNetV2 weights, out of the model files: :mod:`ml.weights.sources` (named sources, the
weights folder, ``WeightsError``), :mod:`ml.weights.tflite` and :mod:`ml.weights.torchvision` (converters into
our state dicts) and :mod:`ml.weights.loading` (``load_pretrained``, ``recalibrate_batchnorm``).

This ``__init__`` imports nothing."""
