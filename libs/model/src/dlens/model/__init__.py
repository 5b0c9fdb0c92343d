"""The DL-ENS model runtime: input features, mfai backbones, ensemble heads, the registry, bundles, inference.

Train writes models with it and serve loads them with it; it holds torch and mfai, which `dlens.common`
(and so ingest and evaluate) never import.
"""
