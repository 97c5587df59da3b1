"""GemPix: an AI image studio with a privacy model you can check."""

__version__ = "0.3.0"
