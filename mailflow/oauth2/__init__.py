"""OAuth2 logins for IMAP and SMTP: token sources per provider, a shared token cache, SASL strings."""
