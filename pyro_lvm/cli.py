"""The ``pyro-lvm`` command: parses, looks up the run kind, calls it.

``pyro-lvm train KIND [options] --out RUN_DIR`` trains a run kind of :mod:`pyro_lvm.runs`
(``vae``, ``sbn``, ``gmm``, ``vqvae``, ...) into a run folder, continuing it if it holds a
checkpoint; ``pyro-lvm evaluate RUN_DIR`` (or ``RUN_DIR/checkpoint.pt``) re-evaluates a run with
the kind that wrote it. Every kind has ``--smoke`` (seconds on the embedded data).

Bad input never ends in a traceback: a wrong option, a missing or unreadable file, a data set
that does not fit, a run folder that another process writes or a full disk each give one line,
``pyro-lvm: error: ...``, naming the problem and the fix, and exit status 2. Nothing already
saved is lost: checkpoints are replaced atomically, and an evaluation prints its table before it
writes its file.
"""
import argparse
import os
import sys
import warnings

from pyro_lvm.errors import CheckpointError, NonFiniteLossError, RunFolderError, UsageError

PROG = "pyro-lvm"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: the problem, and where to read more."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    from pyro_lvm.runs import run_kinds
    from pyro_lvm.runs.base import positive_int

    parser = _Parser(prog=PROG, description="Deep latent-variable models on Pyro.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train a model into a run folder")
    kinds = train.add_subparsers(dest="kind", required=True, parser_class=_Parser, metavar="KIND")
    for name, kind in sorted(run_kinds().items()):
        sub = kinds.add_parser(name, help=kind.help)
        kind.add_arguments(sub)
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--out", required=True, help="run folder (config, checkpoint, metrics, evaluations, PNGs)")
        sub.add_argument("--smoke", action="store_true", help="a few seconds on the embedded data, to check the set-up")
        sub.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate = commands.add_parser("evaluate", help="evaluate a trained run again (its own kind decides how)")
    evaluate.add_argument("run_dir", help="a run folder, or the checkpoint.pt inside one")
    evaluate.add_argument("--samples", type=positive_int, default=None,
                          help="importance samples per image K (default 5000)")
    evaluate.add_argument("--images", type=positive_int, default=None, help="only the first N test images")
    evaluate.add_argument("--batch-size", type=positive_int, default=None)
    evaluate.add_argument("--data", default=None, help="evaluate on this data set instead of the run's own")
    evaluate.add_argument("--data-root", default=None)
    evaluate.add_argument("--no-progress", action="store_true")
    return parser


def _train(args):
    from pyro_lvm.runs import RunFolder, get_run_kind

    kind = get_run_kind(args.kind)
    settings = kind.settings(args)
    with RunFolder(settings["out"], kind.name) as folder:
        return kind.train(folder, settings, progress=not args.no_progress)


def _run_kind_of(run_dir):
    """The run folder and the kind that wrote it (from ``config.json``, else the checkpoint)."""
    from pyro_lvm.runs import get_run_kind, read_config

    if os.path.isfile(run_dir):  # given RUN_DIR/checkpoint.pt
        run_dir = os.path.dirname(os.path.abspath(run_dir))
    if not os.path.isdir(run_dir):
        raise UsageError(f"no run folder at {run_dir}; give the --out folder of a pyro-lvm train run")
    config = read_config(run_dir)
    name = config.get("run_kind") if config else None
    if name is None:  # a checkpoint that fit wrote outside the command line: its kind, or its model's
        checkpoint = os.path.join(run_dir, "checkpoint.pt")
        if not os.path.exists(checkpoint):
            raise CheckpointError(f"no checkpoint at {checkpoint}; give the --out folder of a pyro-lvm train run")
        name = _kind_of_checkpoint(checkpoint)
    return run_dir, get_run_kind(name)


def _kind_of_checkpoint(path):
    from pyro_lvm.runs import run_kinds
    from pyro_lvm.serialization import load_state

    kind, state = load_state(path)  # raises the error that says what is wrong with the file
    if kind != "fit":
        return kind
    classes = {spec.get("class") for spec in (state.get("architectures") or {}).values()}
    for name, run_kind in run_kinds().items():
        if getattr(run_kind, "model_class", None) is not None and run_kind.model_class.__name__ in classes:
            return name
    raise UsageError(f"{path} holds no model that a run kind rebuilds; load it with pyro_lvm.train.load_checkpoint")


def _evaluate(args):
    from pyro_lvm.runs import RunFolder

    run_dir, kind = _run_kind_of(args.run_dir)
    options = {"samples": args.samples, "images": args.images, "batch_size": args.batch_size,
               "data_root": args.data_root, "data": args.data}
    try:
        folder = RunFolder(run_dir, kind.name).__enter__()
    except RunFolderError as e:
        if "not writable" not in str(e):
            raise
        # evaluate anyway: the table is printed before the evaluation file fails to be written
        folder = RunFolder(run_dir, kind.name, write=False).__enter__()
    try:
        return kind.evaluate(folder, options, progress=not args.no_progress)
    finally:
        folder.close()


def _note(message, category, *rest, **kwargs):
    """Warnings as one line a person reads, not a source location."""
    return f"{PROG}: note: {message}\n"


def _one_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def run(argv=None):
    """Parse ``argv`` and run the command; returns its summary (for tests and scripts).

    :raises SystemExit: status 2 after printing one line for a user's error.
    """
    args = build_parser().parse_args(argv)
    previous, warnings.formatwarning = warnings.formatwarning, _note
    try:
        return _dispatch(args)
    finally:
        warnings.formatwarning = previous


def _dispatch(args):
    try:
        return _train(args) if args.command == "train" else _evaluate(args)
    except (UsageError, CheckpointError, NonFiniteLossError, ValueError) as e:
        message = _one_line(e)
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        message = (f"cannot write or read{where}: {e.strerror or e}; whatever was saved before is intact "
                   "(checkpoints are replaced atomically): free space or fix permissions, then run the "
                   "same command again")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the last checkpoint is intact: run the same command to resume",
              file=sys.stderr)
        raise SystemExit(130) from None
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None):
    """Console entry point: exit status 0 on success, 2 on a named error."""
    run(argv)
    return 0


if __name__ == "__main__":
    main()
