pytest_plugins = [
    "tests.fixtures.smtp",
    "tests.fixtures.dovecot",
    "tests.fixtures.oauth2",
    "tests.fixtures.postgres",
]
