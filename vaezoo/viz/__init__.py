"""Pictures: loss curves, sample grids, reconstructions, traversals, latent maps."""
