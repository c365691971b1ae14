"""The score-function ELBO with baselines (objective ``"tracegraph"``)."""
import torch

from pyro_lvm.objectives.trace_elbo import TraceELBO


class TraceGraphELBO(TraceELBO):
    r"""The ELBO whose score-function terms are centred by baselines,

    .. math:: \nabla_\phi \mathcal L \approx \frac1K \sum_k
              \big(\log w_k - b(x)\big)\, \nabla_\phi \log q_\phi(z_k|x)
              + \text{pathwise terms},

    unbiased for any :math:`b` that does not depend on :math:`z_k` (Williams 1992; Ranganath et
    al. 2014, sec. 3; Mnih & Gregor 2014, NVIL, sec. 3.1-3.2). A guide site asks for baselines
    through ``infer={"baseline": {...}}``, with the keys of ``pyro.infer.TraceGraph_ELBO``:

    * ``use_decaying_avg_baseline`` and ``baseline_beta``: a running average of the learning
      signal over batches, :math:`\bar c \leftarrow \beta \bar c + (1 - \beta)\,\mathrm{mean}(c)`;
    * ``nn_baseline`` (an ``nn.Module``) and ``nn_baseline_input``, or a tensor
      ``baseline_value``: an input-dependent baseline trained by least squares on the learning
      signal (its residual when an average is used too); it broadcasts against the site.

    The learning signal of a site is the log-weight summed to the site's own plates (its datum's
    log-weight in a data plate), as in :class:`TraceELBO`; ``pyro.infer.TraceGraph_ELBO`` goes
    further and keeps only the sites downstream of it in the dependency graph. Without
    baselines this is exactly :class:`TraceELBO`, ``beta=`` and ``free_bits=`` included.
    """

    BASELINE_KEYS = {"use_decaying_avg_baseline", "baseline_beta", "nn_baseline", "nn_baseline_input",
                     "baseline_value"}

    def __init__(self, num_particles=1, vectorize_particles=True, max_plate_nesting=None, gradient="standard",
                 beta=None, free_bits=None):
        super().__init__(num_particles, vectorize_particles, max_plate_nesting, gradient, beta=beta,
                         free_bits=free_bits)
        self.averages = {}

    def state_dict(self):
        return {"averages": {k: v.detach().clone() for k, v in self.averages.items()}}

    def load_state_dict(self, state):
        self.averages = dict(state.get("averages", {}))

    def _score_term(self, site, score, cost):
        options = site["infer"].get("baseline", {})
        unknown = set(options) - self.BASELINE_KEYS
        if unknown:
            raise ValueError(f"site {site['name']!r} asks for unknown baseline options {sorted(unknown)}; "
                             f"known: {sorted(self.BASELINE_KEYS)}")
        baseline, fit_loss = 0.0, 0.0
        if options.get("use_decaying_avg_baseline"):
            name, beta = site["name"], options.get("baseline_beta", 0.9)
            average = self.averages.get(name)
            baseline = torch.zeros(()) if average is None else average
            if torch.is_grad_enabled():  # evaluation passes leave the running average alone
                batch_mean = cost.mean()
                self.averages[name] = batch_mean if average is None else beta * average + (1 - beta) * batch_mean
        predicted = options.get("baseline_value")
        if options.get("nn_baseline") is not None:
            predicted = options["nn_baseline"](options["nn_baseline_input"])
            if predicted.shape[-1:] == (1,):
                predicted = predicted.squeeze(-1)
        if predicted is not None:  # fitted by least squares to what the average leaves over
            fit_loss = (predicted - (cost - baseline)).pow(2).sum()
            baseline = baseline + predicted.detach()
        return (score * (cost - baseline)).sum(), fit_loss
