"""Take a trained model anywhere: ONNX graphs (:mod:`.onnx`), Hugging Face Hub folders (:mod:`.hub`).

``vaekit export RUN --format onnx|hub -o DIR`` and ``vaekit push RUN OWNER/NAME`` (:mod:`.command`).
Optional dependencies (onnx, onnxruntime, huggingface_hub) are imported only when used.
"""
