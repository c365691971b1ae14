"""Figures people would rather look at than numbers, saved as PNG."""
from pyro_lvm.plots.curves import plot_estimator_curves, plot_history
from pyro_lvm.plots.diagnostics import plot_kl_per_dim, plot_rate_distortion, plot_traversal
from pyro_lvm.plots.estimators import plot_bound_vs_k, plot_snr_vs_k
from pyro_lvm.plots.images import save_image_grid
from pyro_lvm.plots.mixture import plot_mixture

__all__ = ["plot_bound_vs_k", "plot_estimator_curves", "plot_history", "plot_kl_per_dim", "plot_mixture",
           "plot_rate_distortion", "plot_snr_vs_k", "plot_traversal", "save_image_grid"]
