"""signcam: real-time road-sign recognition on a laptop CPU."""

__version__ = "0.1.0"
