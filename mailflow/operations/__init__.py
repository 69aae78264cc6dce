"""Running mailflow in production: configuration check, heartbeat, metrics, logs, backups, upgrades."""
