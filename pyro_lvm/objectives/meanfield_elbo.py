"""The ELBO with analytic KL terms (objective ``"meanfield"``)."""
import warnings

import torch
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.util import is_validation_enabled

from pyro_lvm.objectives.base import Objective, sample_sites
from pyro_lvm.objectives.kl_control import KLControlled


class MeanFieldELBO(KLControlled, Objective):
    r"""The ELBO with every latent site's expectation taken in closed form where possible,

    .. math:: \mathcal L = \mathbb E_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x)\,\|\,p(z)),

    (Kingma & Welling 2014, eq. 7). A site whose KL is not registered falls back to
    :math:`\log p - \log q` at the sample. Valid when the model's prior at each latent site does
    not depend on other latents (mean-field), as for ``pyro.infer.TraceMeanField_ELBO``, whose
    value and gradient this matches, and whose warning it gives (under validation) when the
    model and guide sample their sites in different orders. Needs fully reparameterised guide
    sites, and raises ``NotImplementedError`` otherwise, as Pyro does.

    ``beta=`` (a number or a schedule over training steps) weights the KL,
    :math:`\mathbb E_q[\log p(x|z)] - \beta\,\mathrm{KL}`; ``free_bits=`` floors the KL of each
    latent dimension (see :mod:`pyro_lvm.objectives.kl_control`).

    The Monte Carlo fall-back is said once per objective and site, in a ``UserWarning`` naming the
    site and both distributions (e.g. a full-covariance or flow guide against a diagonal prior).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sampled_kl_sites = set()

    def _elbo_loss(self, traces):
        elbo = 0.0
        for model_trace, guide_trace in traces:
            if is_validation_enabled():
                _warn_if_orders_differ(model_trace, guide_trace)
            for name, site in sample_sites(model_trace):
                if site["is_observed"]:
                    elbo = elbo + site["log_prob"].sum()
                    continue
                q_site = guide_trace.nodes[name]
                _require_reparameterised(q_site)
                try:
                    kl = kl_divergence(q_site["fn"], site["fn"])
                except NotImplementedError:
                    self._say_sampled_kl(name, q_site["fn"], site["fn"])
                    elbo = elbo + site["log_prob"].sum() - q_site["score_parts"].entropy_term.sum()
                    continue
                kl = scale_and_mask(kl, q_site["scale"], q_site["mask"])
                # a fully masked site's KL is the number 0.0 in Pyro
                elbo = elbo - (kl.sum() if torch.is_tensor(kl) else kl * q_site["fn"].batch_shape.numel())
            for name, q_site in sample_sites(guide_trace):
                if name not in model_trace.nodes:
                    _require_reparameterised(q_site)
                    elbo = elbo - q_site["score_parts"].entropy_term.sum()
        return -elbo / self.num_particles

    def _say_sampled_kl(self, name, q, p):
        if name in self._sampled_kl_sites:
            return
        self._sampled_kl_sites.add(name)
        warnings.warn(f"objective 'meanfield': no closed-form KL({_describe(q)} || {_describe(p)}) at site {name!r}; "
                      "using the Monte Carlo estimate log p(z) - log q(z) at the guide's sample there", stacklevel=4)


def _describe(fn):
    """A distribution's class, with the base of wrappers (``Independent(Normal)``, ...)."""
    base = getattr(fn, "base_dist", None)
    return type(fn).__name__ + (f"({_describe(base)})" if base is not None else "")


def _require_reparameterised(site):
    _, score, entropy = site["score_parts"]
    if not (site["fn"].has_rsample and is_identically_zero(score) and not is_identically_zero(entropy)):
        raise NotImplementedError(f"objective 'meanfield' needs fully reparameterised guide sites; site "
                                  f"{site['name']!r} ({type(site['fn']).__name__}) is not. Use objective 'elbo' "
                                  "(score-function gradients) for it.")


def _warn_if_orders_differ(model_trace, guide_trace):
    """Pyro's sufficient check of the mean-field restriction: the same site order in both."""
    model_sites = [n for n, _ in sample_sites(model_trace) if n in guide_trace.nodes]
    guide_sites = [n for n, _ in sample_sites(guide_trace) if n in model_trace.nodes]
    if model_sites != guide_sites:
        warnings.warn(f"Failed to verify mean field restriction on the guide: the model samples {model_sites} "
                      f"and the guide {guide_sites}. The analytic KL assumes each prior p(z) does not depend on "
                      "latents the guide samples later; sample the sites in the same order to silence this.")
