"""DL-ENS ingest service."""
