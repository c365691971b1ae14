"""Writing a finished matplotlib figure: one place for the layout, the folder and the cleanup."""
import os


def save_figure(fig, path, tight=True):
    """Lay out ``fig``, write it to ``path`` (creating the folder) and close it.

    :returns: ``path``.
    """
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
