"""bl-asr: Kaldi-style speech recognition recipes for Big-Little Net acoustic models."""

__version__ = "0.1.0"
