pytest_plugins = ["dlens.common.testing"]
