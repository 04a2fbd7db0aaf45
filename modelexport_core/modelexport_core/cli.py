"""The `modelexport` command line: export, validate, sign, compile, inspect, compare, plugins list, benchmark."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer vendors click (pinned)

from modelexport_core import render
from modelexport_core.bench.benchmark import benchmark_json, print_benchmark, run_benchmark
from modelexport_core.bench.corpus import print_corpus_report, run_corpus_benchmark
from modelexport_core.errors import TRACEBACK_ENV, ModelExportError, one_line
from modelexport_core.exporter.api import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, export
from modelexport_core.exporter.dims import parse_input_shapes
from modelexport_core.package.buckets import parse_sizes
from modelexport_core.package.files import package_storage
from modelexport_core.package.hierarchy import package_hierarchy
from modelexport_core.package.layout import find_model_file, read_export_metadata
from modelexport_core.package.signing import sign_package
from modelexport_core.package.single_file import unpack
from modelexport_core.package.validate import validate_optimum_compatibility
from modelexport_core.plugins.manager import list_plugins
from modelexport_core.quantize.gate import DEFAULT_MIN_AGREEMENT
from modelexport_core.run.arguments import parse_pipeline_args
from modelexport_core.run.engines import RayOptions
from modelexport_core.run.job import RunOptions, run_job
from modelexport_core.serve.samples import package_inputs
from modelexport_core.targets.compare import compare_on_target
from modelexport_core.targets.compile import compile_package
from modelexport_core.targets.registry import get_target
from modelexport_core.targets.validate import DEFAULT_TOLERANCE, MIN_PSNR_DB, validate_every_graph_on_target

app = typer.Typer(
    help="Export HuggingFace models to fixed-shape ONNX packages that Optimum loads as they are.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
plugins_app = typer.Typer(help="Installed modelexport plugins.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")

F = TypeVar("F", bound=Callable[..., Any])
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (and nothing else there).")]


def user_errors(command: F) -> F:
    """Print any failure of `command` on one line and exit 2; never show a traceback (MODELEXPORT_TRACEBACK=1 does,
    for a failure that is not a user error)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as err:
            if not isinstance(err, ModelExportError | OSError) and os.environ.get(TRACEBACK_ENV):
                raise
            render.user_error(one_line(err))
        except KeyboardInterrupt:
            render.user_error("interrupted (SIGINT or SIGTERM): nothing was written")
        raise typer.Exit(2)

    return run  # type: ignore[return-value]


def _show(data: Any, as_json: bool, pretty: Callable[[Any], None]) -> None:
    """`data` as one JSON document on stdout, or rendered for a person."""
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        pretty(data)


@app.command("export")
@user_errors
def export_command(
    model: Annotated[str, typer.Argument(help="Local model directory or Hub id.")],
    out_dir: Annotated[Path, typer.Argument(help="Package directory to write.")],
    task: Annotated[str | None, typer.Option(help="Task; inferred from config.json when omitted.")] = None,
    batch_size: Annotated[str | None, typer.Option(help="Inputs per run; a list (1,8): a graph each.")] = None,
    sequence_length: Annotated[
        str | None, typer.Option(help="Tokens per input; a list (16,32,64,128) writes one graph per length.")
    ] = None,
    height: Annotated[int | None, typer.Option(min=1)] = None,
    width: Annotated[int | None, typer.Option(min=1)] = None,
    num_channels: Annotated[int | None, typer.Option(min=1)] = None,
    audio_sequence_length: Annotated[
        str | None, typer.Option(help="Samples per clip; a list (4000,8000,16000) writes one graph per window.")
    ] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(help="NAME=d0,d1,... fixes one input's whole shape (repeatable), e.g. CLIP's input_ids=8,16."),
    ] = None,
    opset: Annotated[int, typer.Option(help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET}.")] = DEFAULT_OPSET,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty OUT_DIR.")] = False,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code")] = False,
    revision: Annotated[str | None, typer.Option(help="Hub revision.")] = None,
    token: Annotated[str | None, typer.Option(help="Hub token.")] = None,
    cache_dir: Annotated[str | None, typer.Option(help="Hub cache directory.")] = None,
    quantize: Annotated[
        str | None,
        typer.Option(help="int8 (dynamic, for CPUs) or w8a16 / w8a8 (static QDQ, for NPUs), with an accuracy gate."),
    ] = None,
    dtype: Annotated[str, typer.Option(help="fp32, or fp16 (half the size; what NPUs compute).")] = "fp32",
    min_agreement: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The gate: worst cosine (embeddings) or top-1 agreement.")
    ] = DEFAULT_MIN_AGREEMENT,
    target: Annotated[str | None, typer.Option(help="Apply this target's graph rewrites (e.g. qnn-htp).")] = None,
    as_json: AsJson = False,
) -> None:
    """Export MODEL to OUT_DIR: model.onnx (static, tagged), config.json, preprocessor files, metadata."""
    metadata = export(
        model,
        out_dir,
        task=task,
        batch_size=parse_sizes(batch_size, "--batch-size", "batch size", "1,8"),
        sequence_length=parse_sizes(sequence_length, "--sequence-length"),
        height=height,
        width=width,
        num_channels=num_channels,
        audio_sequence_length=parse_sizes(audio_sequence_length, "--audio-sequence-length"),
        input_shapes=parse_input_shapes(input_shape or []),
        opset=opset,
        force=force,
        trust_remote_code=trust_remote_code,
        revision=revision,
        token=token,
        cache_dir=cache_dir,
        quantize=quantize,
        dtype=dtype,
        min_agreement=min_agreement,
        target=target,
        progress=lambda message: render.err_console.print(f"[cyan]>[/cyan] {message}", highlight=False),
    )
    _show(metadata, as_json, lambda _: render.export_summary(metadata, out_dir))


@app.command("validate")
@user_errors
def validate_command(
    package: Annotated[Path, typer.Argument(help="Package directory.")],
    target: Annotated[str | None, typer.Option(help="Check placement and drift on this target (e.g. qnn-htp).")] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            min=0, help="Largest deviation from CPU, relative to each output's largest magnitude (default 0.02)."
        ),
    ] = None,
    min_psnr: Annotated[
        float,
        typer.Option(help="With --target: an output beyond --tolerance still passes at this PSNR (dB), cosine 0.999."),
    ] = MIN_PSNR_DB,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run the package's own code if its config names some.")
    ] = False,
    public_key: Annotated[
        Path | None, typer.Option(help="Also check the package against its signature (see `sign`).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check a package: signature (--public-key), files and sha256, onnx.checker, static dims, config, Optimum load
    and forward.

    With --target: every node of every graph (shape buckets too) runs on the target (CPU fallback disabled),
    outputs within --tolerance of the CPU (or, small outputs, at --min-psnr and cosine 0.999).
    """
    if not package.is_dir():
        raise ModelExportError(f"Package directory not found: {package}")
    if target is not None and public_key is not None:
        raise ModelExportError("--public-key goes with validate without --target: check the signature first")
    if target is not None:
        tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        reports = validate_every_graph_on_target(package, get_target(target), tolerance, min_psnr)
        gate = (read_export_metadata(package) or {}).get("quantization", {})
        data = {"ok": all(r.ok for r in reports), "graphs": [r.to_dict() for r in reports], "agreement": gate or None}
        _show(data, as_json, lambda _: render.target_reports(reports, gate))
        raise typer.Exit(0 if data["ok"] else 1)

    report = validate_optimum_compatibility(package, trust_remote_code=trust_remote_code, public_key=public_key)
    _show(report.to_dict(), as_json, lambda _: render.validation(report))
    raise typer.Exit(0 if report.ok else 1)


@app.command("sign")
@user_errors
def sign_command(
    package: Annotated[Path, typer.Argument(help="Package directory.")],
    private_key: Annotated[Path, typer.Option(help="Elliptic-curve private key (PEM).")],
    password: Annotated[
        str | None, typer.Option(envvar="MODELEXPORT_KEY_PASSWORD", help="The private key's password, if any.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Sign a package (OpenSSF model-signing): PACKAGE/model.sig covers every file; `validate --public-key` checks
    it."""
    if not package.is_dir():
        raise ModelExportError(f"Package directory not found: {package}")
    signature = sign_package(package, private_key, password)
    data = {"package": str(package), "signature": str(signature)}
    _show(data, as_json, lambda _: render.console.print(f"Signed {package}: {signature}", highlight=False))


@app.command("compile")
@user_errors
def compile_command(
    package: Annotated[Path, typer.Argument(help="Package directory.")],
    target: Annotated[str, typer.Option(help="The target to compile for (e.g. qnn-htp).")],
    as_json: AsJson = False,
) -> None:
    """Precompile every graph for a target (EP context models in PACKAGE/compiled/TARGET/, listed with sha256);
    create_pipeline(target=...) loads them without compiling again."""
    if not package.is_dir():
        raise ModelExportError(f"Package directory not found: {package}")
    written = compile_package(package, get_target(target))
    data = {"package": str(package), "target": target, "files": written}
    _show(data, as_json, lambda _: render.console.print(f"Compiled {package} for {target}: {', '.join(written)}"))


@app.command("unpack")
@user_errors
def unpack_command(
    model_file: Annotated[Path, typer.Argument(help="A model.onnx exported by modelexport (copied on its own).")],
    out_dir: Annotated[Path, typer.Argument(help="Directory to write the package to.")],
    force: Annotated[bool, typer.Option(help="Replace OUT_DIR if it exists.")] = False,
    as_json: AsJson = False,
) -> None:
    """Write the full package a model.onnx embeds (config, tokenizer or preprocessor files, export_metadata.json;
    graphs and weights copied from beside it) to OUT_DIR, for validate and ORTModel.from_pretrained."""
    metadata = unpack(model_file, out_dir, force)
    data = {"package": str(out_dir), "files": [entry["path"] for entry in metadata["files"]]}
    _show(data, as_json, lambda _: render.console.print(f"Unpacked {model_file} to {out_dir}", highlight=False))


@app.command("run")
@user_errors
def run_command(
    package: Annotated[Path, typer.Argument(help="Package directory (or its model.onnx).")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Rows to run: .jsonl, .csv or .parquet.")],
    output: Annotated[Path, typer.Argument(help="Where the answers go: .parquet or .jsonl.")],
    column: Annotated[str | None, typer.Option(help="The input column (default: text, image or audio).")] = None,
    id_column: Annotated[str | None, typer.Option(help="A column of unique row ids (default: row numbers).")] = None,
    drop_input: Annotated[bool, typer.Option("--drop-input", help="Leave the input column out.")] = False,
    pipeline_arg: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for every pipeline call (top_k=3, candidate_labels=a,b).")
    ] = None,
    task: Annotated[str | None, typer.Option(help="Task (default: the package's).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Inputs per pipeline batch.")] = None,
    buckets: Annotated[bool, typer.Option(help="Run each batch on the smallest shape bucket.")] = True,
    sort: Annotated[bool, typer.Option(help="Sort each shard's inputs by length.")] = True,
    target: Annotated[str, typer.Option(help="Execution target.")] = "cpu",
    shard_rows: Annotated[int, typer.Option(min=1, help="Rows per shard (the unit of progress and resume).")] = 512,
    engine: Annotated[str, typer.Option(help="local (this process) or ray (Ray Data actors).")] = "local",
    actors: Annotated[int, typer.Option(min=1, help="Ray: predictor actors.")] = 1,
    cpus_per_actor: Annotated[int, typer.Option(min=1, help="Ray: CPUs per actor.")] = 1,
    ray_address: Annotated[str | None, typer.Option(help="Ray: a cluster to join (default: a local Ray).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT (and any unfinished run).")] = False,
    as_json: AsJson = False,
) -> None:
    """Run the package's task over every row of INPUT into OUTPUT: the id, the input, the answer's columns and
    an `error` column (bad rows never stop the run); written in shards, so --resume finishes an interrupted run."""
    options = RunOptions(
        column=column,
        id_column=id_column,
        drop_input=drop_input,
        pipeline_args=parse_pipeline_args(pipeline_arg or []),
        batch_size=batch_size,
        use_buckets=buckets,
        sort_by_length=sort,
        target=target,
        task=task,
        shard_rows=shard_rows,
    )
    ray = RayOptions(actors=actors, cpus_per_actor=cpus_per_actor, address=ray_address)
    summary = run_job(package, input_path, output, options, engine=engine, ray=ray, resume=resume, force=force)
    _show(summary, as_json, render.run_summary)


@app.command("inspect")
@user_errors
def inspect_command(
    package: Annotated[Path, typer.Argument(help="Package directory or model.onnx.")],
    as_json: AsJson = False,
) -> None:
    """Print the module tree of a package with the node count of each module, and its storage."""
    data = {**package_hierarchy(package), "storage": package_storage(find_model_file(package).parent)}
    _show(data, as_json, render.hierarchy)


@app.command("compare")
@user_errors
def compare_command(
    package: Annotated[Path, typer.Argument(help="Package directory.")],
    target: Annotated[str, typer.Option(help="The target to compare with the reference.")],
    reference: Annotated[str, typer.Option(help="The target taken as exact.")] = "cpu",
    text: Annotated[list[str] | None, typer.Option(help="An input text (repeat for a batch).")] = None,
    image: Annotated[list[Path] | None, typer.Option(help="An input image file (repeat for a batch).")] = None,
    as_json: AsJson = False,
) -> None:
    """Print the module tree with the largest deviation of each module's outputs, target vs reference."""
    if not package.is_dir():
        raise ModelExportError(f"Package directory not found: {package}")
    if text and image:
        raise ModelExportError("Give --text or --image, not both: a package takes one kind of input")
    comparison = compare_on_target(
        package, get_target(target), package_inputs(package, text or image or None), get_target(reference)
    )
    _show(comparison.to_dict(), as_json, lambda _: render.comparison(comparison))


@plugins_app.command("list")
@user_errors
def plugins_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List installed plugins: distribution, version, modalities, tasks, execution targets and hooks."""
    rows = list_plugins()
    _show([asdict(row) for row in rows], as_json, lambda _: render.plugins(rows))


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
    as_json: AsJson = False,
    corpus: Annotated[bool, typer.Option("--corpus", help="Run the modality's realistic corpus instead.")] = False,
    int8: Annotated[Path | None, typer.Option(help="With --corpus: an int8 package of the model to compare.")] = None,
    target: Annotated[str, typer.Option(help="Where our pipeline and the raw session run (e.g. qnn-htp).")] = "cpu",
) -> None:
    """Time PyTorch, Optimum (dynamic axes), our pipeline and a raw session on the same inputs, side by side."""
    if corpus and target != "cpu":
        raise ModelExportError("--corpus runs on the CPU: drop --target, or --corpus")
    if corpus:
        report = run_corpus_benchmark(package, source, int8, task, count, threads, warmup, repeats)
        _show(report.to_dict(), as_json, lambda _: print_corpus_report(report, render.console))
        return
    rows = run_benchmark(package, source, task, count, threads, warmup, repeats, target)
    _show(benchmark_json(rows), as_json, lambda _: print_benchmark(rows, render.console))


def main() -> None:
    """Entry point of the `modelexport` script: SIGTERM and SIGINT stop a command like Ctrl-C (an export cleans up;
    SIGINT too when the script started with it ignored, as a background job of a script does), and
    usage errors and warnings (e.g. a skipped plugin) are one line on stderr."""
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"Warning: {message}\n"
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`cmd &`)
    try:
        sys.exit(app(standalone_mode=False) or 0)
    except NoArgsIsHelpError as err:
        err.show()
        sys.exit(err.exit_code)
    except ClickException as err:
        render.user_error(err.format_message())
        sys.exit(err.exit_code)
    except typer.Abort:
        render.user_error("interrupted: nothing was written")
        sys.exit(2)


if __name__ == "__main__":
    main()
