pytest_plugins = ["closedloop.testing"]
