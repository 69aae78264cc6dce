"""mailflow: reads the Migration Counter's mailbox, understands each email and acts on it."""

__version__ = "0.1.0"
