"""Tenants: organisations, their flows (chat agents), their encrypted secrets and
their model settings layered over the platform"s.
"""

__all__ = ["flows", "registry", "secrets"]
