"""Adapters: the thin side-effecting implementations of the ports in ``mailflow.ports``."""
