"""DL-ENS serve service: registered models on Ray Serve behind an HTTP inference endpoint."""
