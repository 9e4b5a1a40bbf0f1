"""Model export: ONNX, Core ML (ML program) and TensorFlow.js, each with a proof of numeric parity.

Plain PyTorch and NumPy; never imports Django, and the main environment never imports TensorFlow
(``ml.export.tfjs`` runs in the export environment, ``.venv-export``, as a subprocess). See
``docs/export.md`` for the design; in short::

    trained model (ml.checkpoint.load_model)
      -> ExportModule: eval, BN folded, TF "SAME" pads merged (ml.models.inference.inference_model), outputs turned
         into what an app consumes: fg_prob (nail probability), class_prob (finger-class softmax), field
      -> ONNX      torch.onnx (TorchScript exporter), dynamic N/H/W (H, W multiples of 32); onnxruntime
      -> Core ML   coremltools from the traced model: ML program (iOS 15+), image input (RGB 0..255,
                   scale 1/255 + the model's own normalisation inside), FP16 by default or FP32; proven by
                   executing the saved package's MIL program op by op with PyTorch kernels
                   (ml.export.coreml_interpreter), since Apple's runtime does not run on Linux
      -> TF.js     the ONNX graph rebuilt with TensorFlow ops in NHWC (ml.export.tfjs, export env), saved as
                   a SavedModel and converted to a graph model; proven in TensorFlow and in headless
                   Chromium (tfjs cpu and webgl backends, ml.export.browser)

Every artifact folder holds ``nailset-export.json``: the metadata block (ml.export.metadata) and the
parity report (ml.export.parity). Entry point: :func:`ml.export.pipeline.export_model`, which looks the
format up in ml.export.registry (``@export_format(name)``; each format module registers itself;
``EXPORT_FORMATS`` lists the names). Shared parts, by concern: ml.export.spec (names, sizes, ExportError; no
torch), ml.export.module (ExportModule), ml.export.photos (parity photos and inputs), ml.export.files.

This package's ``__init__`` imports nothing: ``python -m ml.export.tfjs`` runs in the export environment,
which has TensorFlow but not PyTorch.
"""

