"""Inference with ONNX Runtime and numpy only: this package must never import torch."""
