"""The engine: torch and diffusers behind plain functions; it knows nothing of users or storage.

Its modules import one another without a cycle (``tests/test_engine_imports.py`` checks).
torch, diffusers, transformers, huggingface_hub and safetensors are imported inside the
functions that use them, so that importing the engine stays cheap: the front doors import its
validation and presets at start-up, and ``gempix --help`` never loads torch.
"""
