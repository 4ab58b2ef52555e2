"""mixsd: inject new knowledge into a language model with Mixed Contextual Self-Distillation."""

__version__ = "0.1.0"
