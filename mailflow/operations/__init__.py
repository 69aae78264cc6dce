"""Running mailflow in production: commands for the people who operate it."""
