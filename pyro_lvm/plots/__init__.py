"""Figures people would rather look at than numbers, saved as PNG."""
from pyro_lvm.plots.curves import plot_estimator_curves, plot_history
from pyro_lvm.plots.diagnostics import plot_kl_per_dim, plot_rate_distortion, plot_traversal
from pyro_lvm.plots.estimators import plot_bound_vs_k, plot_snr_vs_k
from pyro_lvm.plots.images import save_image_grid, save_reconstruction_grid
from pyro_lvm.plots.mixture import plot_mixture

# the latent plots trace models with Pyro; they load on first use so that the Pyro-free VQ-VAE package
# can draw its grids through this package without importing Pyro
_LATENT = ("latent_interpolation", "latent_manifold", "plot_interpolation", "plot_latent_scatter", "plot_manifold",
           "posterior_means")


def __getattr__(name):
    if name in _LATENT:
        from pyro_lvm.plots import latent

        return getattr(latent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["latent_interpolation", "latent_manifold", "plot_bound_vs_k", "plot_estimator_curves", "plot_history",
           "plot_interpolation", "plot_kl_per_dim", "plot_latent_scatter", "plot_manifold", "plot_mixture",
           "plot_rate_distortion", "plot_snr_vs_k", "plot_traversal", "posterior_means", "save_image_grid",
           "save_reconstruction_grid"]
