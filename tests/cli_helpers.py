"""What the command-line tests share: a command that must fail with one line naming the problem."""
import pytest

from pyro_lvm.cli import run


def fails(argv, capsys, *fragments):
    """Run ``argv``: exit status 2 and one line on stderr, holding every fragment, no traceback."""
    with pytest.raises(SystemExit) as info:
        run(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err
