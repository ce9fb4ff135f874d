"""facezoo's release, in a leaf module: config.json records it, and nothing it imports imports back."""

__version__ = "0.1.0"
