"""The pure pipeline stages: each takes the values of the stages before it and returns its own."""
