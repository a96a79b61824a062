"""Clinical-system adapters: one package per system, chosen per practice through the registry."""
