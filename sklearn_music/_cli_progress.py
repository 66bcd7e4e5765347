"""Progress of the command line: one named bar per stage, on stderr, off when not a TTY.

tqdm's own convention: ``disable=None`` shows a bar only when its stream is a
terminal, so a log file or a pipe gets no bars and no control characters. The
command line's ``--progress`` / ``--no-progress`` force them on or off. Bars never
nest: a stage's bar is closed before the next stage starts, and the estimators'
own bars (``verbose``) stay off while the command line draws its own.
"""

import sys


class Progress:
    """Named stages and bars of one command, written to stderr.

    Parameters
    ----------
    enabled : bool or None
        True or False force the bars on or off; None shows them when stderr is a
        terminal (tqdm's ``disable=None``).
    prog : str
        The program name that starts the stage lines.
    """

    def __init__(self, enabled, prog):
        if enabled is None:
            isatty = getattr(sys.stderr, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = bool(enabled)
        self.prog = prog

    def bar(self, desc, total, unit):
        """A tqdm bar named ``desc`` (a disabled one when progress is off)."""
        from tqdm import tqdm

        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            disable=not self.enabled,
            leave=True,
        )

    def stage(self, message):
        """Name a stage that has no bar (``prog: message``), when progress is on."""
        if self.enabled:
            self.write(f"{self.prog}: {message}")

    def write(self, line):
        """A line on stderr that does not break a bar in progress."""
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)


def epoch_callback(bar):
    """A skorch callback that advances ``bar`` by one at the end of every epoch.

    Deep copies (``ConvEmbedder`` copies its callbacks at fit) share the bar.
    """
    from skorch.callbacks import Callback

    class _EpochBar(Callback):
        def on_epoch_end(self, net, **kwargs):
            loss = net.history[-1].get("train_loss")
            if loss is not None:
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

        def __deepcopy__(self, memo):
            return self

    return _EpochBar()
