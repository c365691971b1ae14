"""The ``pyro-lvm`` command: parses, looks up the run kind, calls it.

``pyro-lvm train KIND [options] --out RUN_DIR`` trains a run kind of :mod:`pyro_lvm.runs`
(``vae``, ``sbn``, ``gmm``, ``vqvae``, ...) into a run folder, continuing it if it holds a
checkpoint; ``pyro-lvm evaluate RUN_DIR`` (or ``RUN_DIR/checkpoint.pt``) re-evaluates a run with
the kind that wrote it. Every kind has ``--smoke`` (seconds on the embedded data).
``pyro-lvm compare-elbos`` compares ELBO estimators on a run or an exact model
(:mod:`pyro_lvm.runs.compare_elbos`); ``pyro-lvm diagnose RUN_DIR`` prints a run's posterior-collapse
diagnostics (:mod:`pyro_lvm.runs.diagnose`); ``pyro-lvm plot RUN_DIR --kind KIND`` draws one of its figures
(:mod:`pyro_lvm.runs.plot`) and ``pyro-lvm report RUN_DIR`` writes its ``report.html``
(:mod:`pyro_lvm.runs.report`).

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

from pyro_lvm.errors import CheckpointError, NonFiniteLossError, UsageError

PROG = "pyro-lvm"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: the problem, and where to read more."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    from pyro_lvm.device import add_device_arguments
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
        add_device_arguments(sub)
    evaluate = commands.add_parser("evaluate", help="evaluate a trained run again (its own kind decides how)")
    evaluate.add_argument("run_dir", help="a run folder, or the checkpoint.pt inside one")
    evaluate.add_argument("--samples", type=positive_int, default=None,
                          help="importance samples per image K (default 5000)")
    evaluate.add_argument("--images", type=positive_int, default=None, help="only the first N test images")
    evaluate.add_argument("--batch-size", type=positive_int, default=None)
    evaluate.add_argument("--data", default=None, help="evaluate on this data set instead of the run's own")
    evaluate.add_argument("--data-root", default=None)
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.add_argument("--arviz", default=None, metavar="FILE",
                          help="also write the guide's draws for the first --images test images (default 100, "
                               "--samples each, default 1000) with log p(x|z), log-weights and PSIS k-hat as an "
                               "ArviZ InferenceData in netCDF (vae and sbn runs; arviz.from_netcdf reads it)")
    from pyro_lvm.runs import compare_elbos

    compare_elbos.add_arguments(commands.add_parser("compare-elbos", help=compare_elbos.HELP))
    from pyro_lvm.runs import diagnose

    diagnose.add_arguments(commands.add_parser("diagnose", help=diagnose.HELP))
    from pyro_lvm.runs import plot, report

    plot.add_arguments(commands.add_parser("plot", help=plot.HELP))
    report.add_arguments(commands.add_parser("report", help=report.HELP))
    return parser


def _train(args):
    from pyro_lvm.runs import RunFolder, get_run_kind

    from pyro_lvm import distributed

    kind = get_run_kind(args.kind)
    settings = kind.settings(args)
    # under torchrun: join the process group, each process on its device; rank 0 holds the folder's lock
    settings["device"] = str(distributed.init_from_env(settings["device"]))
    with RunFolder(settings["out"], kind.name, write=distributed.is_main()) as folder:
        return kind.train(folder, settings, progress=not args.no_progress)


def _run_kind_of(path):
    """The run folder, checkpoint and run kind of ``path`` (a run folder, or a checkpoint file)."""
    from pyro_lvm.runs import get_run_kind, read_config
    from pyro_lvm.runs.folder import CHECKPOINT
    from pyro_lvm.runs.saved import run_kind_of_checkpoint

    if os.path.isfile(path):
        if not path.endswith((".pt", ".pth")):
            raise UsageError(f"{path} is not a checkpoint; give a run folder or its checkpoint.pt")
        run_dir, checkpoint = os.path.dirname(os.path.abspath(path)), path
    elif os.path.isdir(path):
        run_dir, checkpoint = path, os.path.join(path, CHECKPOINT)
    else:
        raise UsageError(f"no run folder at {path}; give the --out folder of a pyro-lvm train run")
    config = read_config(run_dir) if os.path.basename(checkpoint) == CHECKPOINT else None
    if config and config.get("run_kind"):
        return run_dir, checkpoint, get_run_kind(config["run_kind"])
    if not os.path.exists(checkpoint):  # a checkpoint that fit wrote outside the command line is fine too
        raise CheckpointError(f"no checkpoint at {checkpoint}; give the --out folder of a pyro-lvm train run")
    return run_dir, checkpoint, get_run_kind(run_kind_of_checkpoint(checkpoint))


def _evaluate(args):
    from pyro_lvm.runs import RunFolder
    from pyro_lvm.runs.folder import RunFolderNotWritable

    run_dir, checkpoint, kind = _run_kind_of(args.run_dir)
    options = {"samples": args.samples, "images": args.images, "batch_size": args.batch_size,
               "data_root": args.data_root, "data": args.data, "checkpoint": checkpoint}
    try:
        folder = RunFolder(run_dir, kind.name).__enter__()
    except RunFolderNotWritable:
        # evaluate anyway: the table is printed before the evaluation file fails to be written
        folder = RunFolder(run_dir, kind.name, write=False).__enter__()
    try:
        result = kind.evaluate(folder, options, progress=not args.no_progress)
    finally:
        folder.close()
    if args.arviz:
        from pyro_lvm.runs.report import write_inference_data

        result["arviz"] = write_inference_data(run_dir, args.arviz, samples=args.samples or 1000,
                                               images=args.images or 100, data=args.data, data_root=args.data_root)
    return result


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
        if args.command == "compare-elbos":
            from pyro_lvm.runs import compare_elbos

            return compare_elbos.run(args)
        if args.command == "diagnose":
            from pyro_lvm.runs import diagnose

            return diagnose.run(args)
        if args.command in ("plot", "report"):
            from pyro_lvm.runs import plot, report

            return (plot if args.command == "plot" else report).run(args)
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
