"""The fixtures of crmetrics.testing: tiny_project, tiny_crm_path, register_plugin."""

pytest_plugins = ["crmetrics.testing"]
