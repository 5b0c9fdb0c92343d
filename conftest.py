import os

# Set before Ray is imported anywhere: workers share this venv (see dlens.common).
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
# The shared fixtures come from dlens-testing's pytest plugin (its pytest11 entry point).
