"""Data subjects' rights: finding everything about one person, and handing it over (GDPR art. 15)."""
