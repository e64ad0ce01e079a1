"""``tokbench``: the command-line interface, a thin layer over the library.

One module per command group: :mod:`~tokbench.cli.inspect` (ls, preview, viz),
:mod:`~tokbench.cli.train`, :mod:`~tokbench.cli.run` (run, flops) and
:mod:`~tokbench.cli.results` (check, report, plot). Every command parses and validates its
options, calls library functions, and prints a summary. Bad input gets one line on stderr and exit status 2 (``--debug`` shows the
traceback). Heavy imports (torch, pandas) happen inside commands, so ``--help`` is fast
and ``plot`` never imports torch.
"""

from __future__ import annotations

import sys
import warnings

import click

from tokbench.errors import TokbenchError, TokbenchWarning

#: Seeds feed torch generators, which take 64 bits; 63, so that no two seeds share a stream.
SEED = click.IntRange(0, 2**63 - 1)


class TokbenchGroup(click.Group):
    """A click group whose errors are one line and exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning  # results warnings as one tokbench line
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = code if isinstance(code, int) else 0
        except click.exceptions.NoArgsIsHelpError as e:  # bare `tokbench`: show the help
            click.echo(e.ctx.get_help())
            code = 0
        except click.UsageError as e:  # bad options, including click's own validation
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
            click.echo(f"tokbench: error: {_one_line(e.format_message())}{hint}", err=True)
            code = 2
        except TokbenchError as e:
            if debug:
                raise
            click.echo(f"tokbench: error: {_one_line(str(e))}", err=True)
            code = 2
        except click.ClickException as e:
            e.show()
            code = e.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


_SHOW_WARNING = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """tokbench's own warnings (a damaged results line, a duplicate method) as one
    ``tokbench: warning: ...`` line; other warnings as Python shows them."""
    if issubclass(category, TokbenchWarning):
        click.echo(f"tokbench: warning: {message}", err=True)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@click.group(cls=TokbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Load methods from a local module or .py file (repeatable; also TOKBENCH_PLUGINS=a,b). "
                   "Installed packages declaring the 'tokbench.methods' entry point load by themselves.")
@click.version_option(package_name="tokbench")
def cli(debug: bool, plugins: tuple[str, ...]) -> None:
    """tokbench: a benchmark suite for video token reduction.

    Puts token-reduction methods around the same video backbones, sweeps the keep ratio
    (P-Ratio = fraction of patch tokens kept), and measures FLOPs (fvcore convention:
    1 multiply-add = 1 FLOP) and throughput for every point.

    \b
    Example:
      tokbench run --backbone videomae_s --methods none,random --p-ratio 0.1:0.9
      tokbench report                  # your own runs (results/runs) -> reports/report.html
      tokbench --plugin my_methods run --smoke --methods mine,random   # your own method
    """
    import logging

    from tokbench.plugins import load_plugins

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_plugins(plugins, warn=lambda line: click.echo(f"tokbench: warning: {line}", err=True))


def main() -> None:
    cli.main(prog_name="tokbench")



# The commands register themselves on ``cli`` when their modules are imported.
from tokbench.cli import inspect, results, run, train  # noqa: E402, F401  (after ``cli`` exists)

__all__ = ["cli", "main", "SEED"]
