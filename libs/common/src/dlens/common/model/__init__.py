"""The DL-ENS model at inference: input features, mfai backbones, ensemble heads, the registry, prediction.

Train writes models with it and serve loads them with it (torch and mfai: `dlens-common[model]`).
"""
