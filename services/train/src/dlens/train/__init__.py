"""DL-ENS train service: dataset over the store, mfai models, Ray Train and Tune, model registry."""

import dlens.common  # noqa: F401  (sets Ray's environment before this package's modules import Ray)
