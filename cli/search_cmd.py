"""Placeholder: the root search command and `pareto` (online search)."""
import typer


def root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def register(app: typer.Typer) -> None:
    pass
