"""The `modelexport` command line: export, validate, inspect, plugins list."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.tree import Tree

from .accuracy_gate import DEFAULT_MIN_AGREEMENT
from .errors import ModelExportError

app = typer.Typer(help="Export HuggingFace models to fixed-shape ONNX packages that Optimum loads as they are.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
plugins_app = typer.Typer(help="Installed modelexport plugins.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """Print a user error on one line and exit 2; never show a traceback for it."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ModelExportError as err:
            err_console.print(f"Error: {err}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return run  # type: ignore[return-value]


def _print_report(report: Any) -> None:
    for check in report.checks:
        mark = "[green]PASS[/green]" if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
    console.print("[bold green]valid[/bold green]" if report.ok else "[bold red]invalid[/bold red]")


@app.command("export")
@user_errors
def export_command(
    model: Annotated[str, typer.Argument(help="Local model directory or Hub id.")],
    out_dir: Annotated[Path, typer.Argument(help="Package directory to write.")],
    task: Annotated[str | None, typer.Option(help="Task; inferred from config.json when omitted.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    sequence_length: Annotated[
        str | None, typer.Option(help="Tokens per input; a list (16,32,64,128) writes one graph per length.")
    ] = None,
    height: Annotated[int | None, typer.Option(min=1)] = None,
    width: Annotated[int | None, typer.Option(min=1)] = None,
    num_channels: Annotated[int | None, typer.Option(min=1)] = None,
    audio_sequence_length: Annotated[int | None, typer.Option(min=1)] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(help="NAME=d0,d1,... fixes one input's whole shape (repeatable), e.g. CLIP's input_ids=8,16."),
    ] = None,
    opset: Annotated[int, typer.Option(min=18, help="ONNX opset (the dynamo exporter needs 18+).")] = 18,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty OUT_DIR.")] = False,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code")] = False,
    revision: Annotated[str | None, typer.Option(help="Hub revision.")] = None,
    token: Annotated[str | None, typer.Option(help="Hub token.")] = None,
    cache_dir: Annotated[str | None, typer.Option(help="Hub cache directory.")] = None,
    quantize: Annotated[str | None, typer.Option(help="int8: dynamic quantization for CPUs, with an accuracy gate.")] = None,
    min_agreement: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The int8 gate: worst cosine (embeddings) or top-1 agreement.")
    ] = DEFAULT_MIN_AGREEMENT,
) -> None:
    """Export MODEL to OUT_DIR: model.onnx (static, tagged), config.json, preprocessor files, metadata."""
    from .buckets import parse_lengths
    from .export import export
    from .input_shapes import parse_input_shapes

    metadata = export(
        model, out_dir, task=task, batch_size=batch_size, sequence_length=parse_lengths(sequence_length),
        height=height, width=width, num_channels=num_channels, audio_sequence_length=audio_sequence_length,
        input_shapes=parse_input_shapes(input_shape or []), opset=opset,
        force=force, trust_remote_code=trust_remote_code, revision=revision, token=token, cache_dir=cache_dir,
        quantize=quantize, min_agreement=min_agreement,
        progress=lambda message: err_console.print(f"[cyan]>[/cyan] {message}", highlight=False),
    )
    shapes = ", ".join(f"{name}{shape}" for name, shape in metadata["shapes"].items())
    hierarchy = metadata["hierarchy"]
    console.print(f"Exported {metadata['source_model']} ({metadata['task']}) to {out_dir}: {shapes}", highlight=False)
    console.print(
        f"{hierarchy['nodes']} nodes tagged, {hierarchy['root_fallback_nodes']} attributed to the root module",
        highlight=False,
    )
    for check in metadata["validation"]["checks"]:
        console.print(f"[green]PASS[/green] {check['name']}: {check['detail']}", highlight=False)


@app.command("validate")
@user_errors
def validate_command(package: Annotated[Path, typer.Argument(help="Package directory.")]) -> None:
    """Check a package: files and sha256, onnx.checker, static dims, config, Optimum load and forward."""
    from .validate import validate_optimum_compatibility

    if not package.is_dir():
        raise ModelExportError(f"Package directory not found: {package}")
    report = validate_optimum_compatibility(package)
    _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


@app.command("inspect")
@user_errors
def inspect_command(
    package: Annotated[Path, typer.Argument(help="Package directory or model.onnx.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the module tree of a package with the node count of each module."""
    from .inspect import package_hierarchy

    hierarchy = package_hierarchy(package)
    if as_json:
        print(json.dumps(hierarchy, indent=2))
        return
    tree = Tree(_tree_label(hierarchy["tree"]))
    _grow(tree, hierarchy["tree"])
    console.print(tree)
    console.print(
        f"{hierarchy['nodes']} nodes, {hierarchy['tagged_nodes']} tagged, "
        f"{hierarchy['root_fallback_nodes']} attributed to the root", highlight=False,
    )


def _tree_label(node: dict[str, Any]) -> str:
    name = node["path"].rsplit(".", 1)[-1] if node["path"] else "(root)"
    return f"{name} [dim]{node['class']}[/dim]  {node['total']} nodes ({node['nodes']} own)"


def _grow(tree: Tree, node: dict[str, Any]) -> None:
    for child in node["children"]:
        _grow(tree.add(_tree_label(child)), child)


@plugins_app.command("list")
def plugins_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List installed plugins: distribution, version, modalities, tasks and hooks."""
    from dataclasses import asdict

    from .plugins import list_plugins

    rows = list_plugins()
    if as_json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return
    # Fold instead of the default ellipsis: a narrow terminal or a pipe (80 columns) must not cut names short.
    table = Table(*(Column(name, overflow="fold") for name in ("plugin", "distribution", "version", "modality",
                                                                "tasks", "hooks")))
    for row in rows:
        table.add_row(row.plugin, row.distribution, row.version, "\n".join(row.modality) or "-",
                      "\n".join(row.tasks) or "-", "\n".join(row.hooks) or "-")
    console.print(table)


@app.command("benchmark")
@user_errors
def benchmark_command(
    package: Annotated[Path, typer.Argument(help="Package directory.")],
    source: Annotated[Path, typer.Option(help="The original model directory (PyTorch baseline).")],
    task: Annotated[str | None, typer.Option(help="Task; the package's own by default.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Inputs per measurement (default: 4 batches).")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Threads for torch and onnxruntime alike.")] = 1,
    warmup: Annotated[int, typer.Option(min=0)] = 2,
    repeats: Annotated[int, typer.Option(min=1)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    corpus: Annotated[bool, typer.Option("--corpus", help="Run the modality's realistic corpus instead.")] = False,
    int8: Annotated[Path | None, typer.Option(help="With --corpus: an int8 package of the model to compare.")] = None,
) -> None:
    """Time PyTorch, Optimum (dynamic axes), our pipeline and a raw session on the same inputs, side by side."""
    from .benchmark import benchmark_json, print_benchmark, run_benchmark

    if corpus:
        from .corpus_benchmark import print_corpus_report, run_corpus_benchmark

        report = run_corpus_benchmark(package, source, int8, task, count, threads, warmup, repeats)
        print(json.dumps(report.to_dict(), indent=2)) if as_json else print_corpus_report(report, console)
        return
    rows = run_benchmark(package, source, task=task, count=count, threads=threads, warmup=warmup, repeats=repeats)
    if as_json:
        print(json.dumps(benchmark_json(rows), indent=2))
    else:
        print_benchmark(rows, console)


def main() -> None:
    """Entry point of the `modelexport` script."""
    sys.exit(app())


if __name__ == "__main__":
    main()
