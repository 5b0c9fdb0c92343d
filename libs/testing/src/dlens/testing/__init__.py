"""DL-ENS test support, a development dependency only (no runtime package or image holds it).

- `dlens.testing.plugin`: the pytest plugin every package's tests load (registered through the
  ``pytest11`` entry point): S3 endpoint, Ray cluster, real CAMS samples, shared session set-ups.
- `dlens.testing.mock_store`: a small store whose members have known skills.
- `dlens.testing.browser`: headless Chromium for the pages a person looks at.
"""
