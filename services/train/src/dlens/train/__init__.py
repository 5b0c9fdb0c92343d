"""DL-ENS train service: dataset over the store, mfai models, Ray Train and Tune, model registry."""
