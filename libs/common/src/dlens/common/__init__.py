"""DL-ENS shared library."""
