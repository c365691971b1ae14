"""The ELBO with analytic KL terms (objective ``"meanfield"``)."""
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask

from pyro_lvm.objectives.base import Objective, sample_sites


class MeanFieldELBO(Objective):
    r"""The ELBO with every latent site's expectation taken in closed form where possible,

    .. math:: \mathcal L = \mathbb E_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x)\,\|\,p(z)),

    (Kingma & Welling 2014, eq. 7). A site whose KL is not registered falls back to
    :math:`\log p - \log q` at the sample. Valid when the model's prior at each latent site does
    not depend on other latents (mean-field), as for ``pyro.infer.TraceMeanField_ELBO``, whose
    value and gradient this matches. Needs reparameterised guide sites.
    """

    def _loss(self, traces):
        elbo = 0.0
        for model_trace, guide_trace in traces:
            names = [s["name"] for s in self._score_function_sites(guide_trace)]
            if names:
                raise ValueError(f"objective 'meanfield' needs reparameterised guide sites; {names} are not. "
                                 "Use objective 'elbo' for discrete latents.")
            for name, site in sample_sites(model_trace):
                if site["is_observed"]:
                    elbo = elbo + site["log_prob"].sum()
                    continue
                q_site = guide_trace.nodes[name]
                try:
                    kl = kl_divergence(q_site["fn"], site["fn"])
                    elbo = elbo - scale_and_mask(kl, q_site["scale"], q_site["mask"]).sum()
                except NotImplementedError:
                    elbo = elbo + site["log_prob"].sum() - q_site["log_prob"].sum()
            for name, q_site in sample_sites(guide_trace):
                if name not in model_trace.nodes:
                    elbo = elbo - q_site["log_prob"].sum()
        return -elbo / self.num_particles
