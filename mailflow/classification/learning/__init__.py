"""The learned classifier: what it reads of an email, how it is trained, stored and loaded."""
