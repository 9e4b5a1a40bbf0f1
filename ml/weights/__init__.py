"""Pretrained MobileNetV2 weights, out of the model files: :mod:`ml.weights.sources` (named sources, the
weights folder, ``WeightsError``), :mod:`ml.weights.tflite` and :mod:`ml.weights.torchvision` (converters into
our state dicts) and :mod:`ml.weights.loading` (``load_pretrained``, ``recalibrate_batchnorm``).

``nail_tip.npz`` is no pretrained backbone: the project's own trained weights of :mod:`ml.nail_direction`
(which end of a nail is its tip), and ``nail_axis.npz`` its finger-axis network (which way a round nail's
finger runs), both written by ``bench/fit_label_suggestions.py``; ``nail_outline.npz`` neither:
those of :mod:`ml.click_outline` (the clicked nail's outline), written by ``bench/fit_click_outline.py``.

This ``__init__`` imports nothing."""
