"""What the `modelexport` commands print: reports, trees and tables, on the console (errors on stderr)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Column, Table
from rich.tree import Tree

from modelexport_core.quantize.gate import describe_quantization
from modelexport_core.targets.compare import JUMP_FACTOR

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def user_error(message: str) -> None:
    """`Error: message` on stderr, on one line."""
    err_console.print(f"Error: {message}", markup=False, highlight=False, soft_wrap=True)


def validation(report: Any) -> None:
    """Each check of `validate`, then valid / invalid."""
    for check in report.checks:
        mark = "[green]PASS[/green]" if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
    console.print("[bold green]valid[/bold green]" if report.ok else "[bold red]invalid[/bold red]")


def export_summary(metadata: dict[str, Any], out_dir: Path) -> None:
    """What `export` wrote: the shapes, the tagged nodes, each validation check."""
    shapes = ", ".join(f"{name}{shape}" for name, shape in metadata["shapes"].items())
    hierarchy = metadata["hierarchy"]
    console.print(f"Exported {metadata['source_model']} ({metadata['task']}) to {out_dir}: {shapes}", highlight=False)
    console.print(
        f"{hierarchy['nodes']} nodes tagged, {hierarchy['root_fallback_nodes']} attributed to the root module",
        highlight=False,
    )
    for check in metadata["validation"]["checks"]:
        console.print(f"[green]PASS[/green] {check['name']}: {check['detail']}", highlight=False)


def run_summary(summary: dict[str, Any]) -> None:
    rate = f", {summary['rows_per_second']} rows/s" if summary["rows_per_second"] else ""
    rate += f" (first answers after {summary['startup_seconds']} s)" if summary["startup_seconds"] else ""
    resumed = f" ({summary['resumed']} from an earlier run)" if summary["resumed"] else ""
    console.print(
        f"Wrote {summary['rows']} rows to {summary['output']}{resumed}: {summary['errors']} with an error, "
        f"{summary['seconds']} s{rate}",
        highlight=False,
    )


def target_report(report: Any) -> None:
    """`validate --target` of one graph: placement, each output's deviation, the verdict."""
    if report.fallback:
        console.print(
            f"[red]FAIL[/red] placement: {len(report.fallback)} of {report.nodes} nodes are refused by "
            f"{report.provider} and fall back to the CPU:",
            highlight=False,
        )
        for node in report.fallback:
            console.print(f"  {node.describe()}", markup=False, highlight=False)
    else:
        console.print(f"[green]PASS[/green] placement: all {report.nodes} nodes on {report.provider}", highlight=False)
    for d in report.deviations:
        mark = "[green]PASS[/green]" if d.within(report.tolerance, report.min_psnr) else "[red]FAIL[/red]"
        console.print(
            f"{mark} deviation {d.name}: max |{report.target} - cpu| = {d.deviation:.3g} "
            f"({d.relative:.2%} of its largest value {d.scale:.3g}; tolerance {report.tolerance:.2%}), "
            f"PSNR {d.psnr:.1f} dB, cosine {d.cosine:.6f}",
            highlight=False,
        )
    console.print(
        f"[bold green]runs on {report.target}[/bold green]"
        if report.ok
        else f"[bold red]does not run on {report.target} as on the CPU[/bold red]"
    )


def target_reports(reports: list[Any], gate: dict[str, Any]) -> None:
    """`validate --target`: each graph's report (named when there are several), then the export's gate."""
    for report in reports:
        if len(reports) > 1:
            console.print(f"[bold]{report.graph}[/bold]", highlight=False)
        target_report(report)
    if "precision" in gate:
        console.print(f"agreement with fp32 at export: {describe_quantization(gate)}", highlight=False)


def hierarchy(summary: dict[str, Any]) -> None:
    """The module tree of `inspect`, with node counts."""
    tree = Tree(_tree_label(summary["tree"]))
    _grow_tree(tree, summary["tree"])
    console.print(tree)
    console.print(
        f"{summary['nodes']} nodes, {summary['tagged_nodes']} tagged, "
        f"{summary['root_fallback_nodes']} attributed to the root",
        highlight=False,
    )
    storage = summary["storage"]
    shared = storage["shared_weights"]
    saved = f"; the graphs share one weights file, saving {shared['shared_bytes'] / 1e6:.1f} MB" if shared else ""
    console.print(f"{len(storage['files'])} files, {storage['total_bytes'] / 1e6:.1f} MB{saved}", highlight=False)


def comparison(result: Any) -> None:
    """The module tree of `compare` with each module's deviation, and the first jump."""
    tree = Tree(_deviation_label(result.root))
    _grow_deviations(tree, result.root)
    Console(width=max(console.width, 160)).print(tree)  # a deep tree's labels are never cut short
    if result.first_jump is None:
        console.print(
            f"No module's deviation jumps ({JUMP_FACTOR:g}x the largest before it): the drift builds up gradually",
            highlight=False,
        )
    else:
        console.print(f"First jump: {result.first_jump or '(root)'}", highlight=False)


def plugins(rows: list[Any]) -> None:
    """The table of `plugins list`."""
    # Fold instead of the default ellipsis: a narrow terminal or a pipe (80 columns) must not cut names short.
    columns = ("plugin", "distribution", "version", "modality", "tasks", "targets", "hooks")
    table = Table(*(Column(name, overflow="fold") for name in columns))
    for row in rows:
        lists = (row.modality, row.tasks, row.targets, row.hooks)
        table.add_row(row.plugin, row.distribution, row.version, *("\n".join(items) or "-" for items in lists))
    console.print(table)


def _deviation_label(node: Any) -> str:
    name = node.path.rsplit(".", 1)[-1] if node.path else "(root)"
    mark = "  [bold red]<- first jump[/bold red]" if node.jump else ""
    return f"{name}  max |Δ| {node.deviation:.3g} ({node.relative:.2%} of {node.scale:.3g}){mark}"


def _grow_deviations(tree: Tree, node: Any) -> None:
    for child in node.children:
        _grow_deviations(tree.add(_deviation_label(child)), child)


def _tree_label(node: dict[str, Any]) -> str:
    name = node["path"].rsplit(".", 1)[-1] if node["path"] else "(root)"
    return f"{name} [dim]{node['class']}[/dim]  {node['total']} nodes ({node['nodes']} own)"


def _grow_tree(tree: Tree, node: dict[str, Any]) -> None:
    for child in node["children"]:
        _grow_tree(tree.add(_tree_label(child)), child)
