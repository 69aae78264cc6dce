pytest_plugins = ["tests.fixtures.smtp", "tests.fixtures.dovecot", "tests.fixtures.postgres"]
