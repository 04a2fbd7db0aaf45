"""The hostile and careless user's table: every row runs a real `modelexport` process against a situation set up
on disk (and sometimes changed while the command runs), then asserts its exit code, its one line on stderr (or
the FAIL line of validate) and the files on disk afterwards. The rows that call the Python API (threads, odd
texts) are at the end; hypothesis writes hostile export_metadata.json files last.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelexport_core import create_pipeline, validate_optimum_compatibility
from modelexport_core.package.files import sha256_of

from conftest import TINY_BERT_SHAPE_OPTIONS, cli_env
from tiny_vision_models import write_tiny_vit

TASK = "text-classification"
MODELEXPORT = str(Path(sys.executable).with_name("modelexport"))
MINE = {"mine.txt": "created while the export ran"}


@dataclass
class World:
    """A scratch folder holding the row's model, package and whatever the row puts there."""

    root: Path
    model: Path
    package: Path
    env: dict[str, str] = field(default_factory=cli_env)
    background: list[subprocess.Popen] = field(default_factory=list)
    limit_file_size: int | None = None

    def out(self, name: str = "out") -> Path:
        return self.root / name

    def copy_package(self) -> Path:
        return shutil.copytree(self.package, self.root / "pkg")

    def start(self, *args: object) -> subprocess.Popen:
        limit = self.limit_file_size

        def limited() -> None:  # a full disk, as a process sees it: writes fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return subprocess.Popen(
            [MODELEXPORT, *map(str, args)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limited if limit else None,
        )


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link under `root` (hidden ones too): relative path -> sha256, or the link's target."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = sha256_of(path)
    return found


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def staging_of(world: World, name: str = "out") -> Callable[[], bool]:
    return lambda: any(p.name.startswith(f".{name}.partial-") for p in world.root.iterdir())


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


# ---- Setups: each prepares the world and returns the command's arguments ----


def export_args(world: World, out: str = "out", *extra: object) -> tuple[object, ...]:
    return ("export", world.model, world.out(out), "--task", TASK, *TINY_BERT_SHAPE_OPTIONS, *extra)


def model_variant(world: World, change: Callable[[Path], None]) -> Path:
    model = shutil.copytree(world.model, world.root / "model")
    change(model)
    world.model = model
    return model


def truncate_weights(model: Path) -> None:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def nan_weights(model: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    torch_model = AutoModelForSequenceClassification.from_pretrained(model)
    for parameter in torch_model.parameters():
        parameter.data.fill_(float("nan"))
    torch_model.save_pretrained(model)


def optimum_package(world: World) -> Path:
    """A plain Optimum export (dynamic axes, no modelexport metadata or tags)."""
    import contextlib
    import io

    from optimum.exporters.onnx import main_export

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main_export(str(world.model), world.root / "dynamic", task=TASK, do_validation=False)
    return world.root / "dynamic"


def list_file(package: Path, path: str, sha256: str) -> None:
    edit_json(
        package / "export_metadata.json", lambda m: {**m, "files": [*m["files"], {"path": path, "sha256": sha256}]}
    )


def listed_fifo_outside(world: World) -> tuple[object, ...]:
    """A listed path out of the package to a FIFO: opening it would block, so the row would time out."""
    package = world.copy_package()
    os.mkfifo(world.root / "outside.fifo")
    list_file(package, "../outside.fifo", "0" * 64)
    return ("validate", package)


def listed_absolute(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    list_file(package, "/etc/hostname", sha256_of(Path("/etc/hostname")))
    return ("validate", package)


def listed_link_out(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    (package / "linked.txt").symlink_to("/etc/hostname")
    list_file(package, "linked.txt", sha256_of(Path("/etc/hostname")))
    return ("validate", package)


def forge_labels(package: Path) -> None:
    edit_json(package / "config.json", lambda c: {**c, "id2label": {"0": "forged", "1": "forged", "2": "forged"}})


def forged_config_unlisted(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    forge_labels(package)
    edit_json(
        package / "export_metadata.json",
        lambda m: {**m, "files": [e for e in m["files"] if e["path"] != "config.json"]},
    )
    return ("validate", package)


def forged_config(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    forge_labels(package)
    return ("validate", package)


def edited_task(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    edit_json(package / "export_metadata.json", lambda m: {**m, "task": "fill-mask"})
    return ("validate", package)


def extra_file(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    (package / "extra.txt").write_text("not exported")
    return ("validate", package)


def custom_code(world: World) -> tuple[object, ...]:
    package = world.copy_package()
    marker = world.root / "code-ran"
    (package / "custom.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    custom = {"model_type": "custom-bert", "auto_map": {"AutoConfig": "custom.CustomConfig"}}
    edit_json(package / "config.json", lambda c: {**c, **custom})
    return ("validate", package)


def write_keys(directory: Path) -> tuple[Path, Path]:
    """An elliptic-curve (P-256) key pair in PEM files, as `openssl ecparam -genkey` writes them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / "signing.pem", directory / "signing.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def signed(world: World, change: Callable[[Path], None] | None = None) -> tuple[object, ...]:
    package = world.copy_package()
    private, public = write_keys(world.root)
    done = subprocess.run([MODELEXPORT, "sign", package, "--private-key", private], env=world.env, capture_output=True)
    assert done.returncode == 0, done.stderr
    if change:
        change(package)
    return ("validate", package, "--public-key", public)


def one_byte_changed(package: Path) -> None:
    with (package / "model.onnx").open("r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))


def broken_plugin(world: World, module_text: str | None) -> None:
    """An installed distribution (on PYTHONPATH) whose plugin module is missing, or holds `module_text`."""
    site = world.root / "site"
    dist = site / "modelexport_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: modelexport-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[modelexport]\nbroken = modelexport_broken_plugin\n")
    if module_text is not None:
        (site / "modelexport_broken_plugin.py").write_text(module_text)
    world.env = cli_env(PYTHONPATH=str(site))


RAISING_HOOK = """
from modelexport_core import hookimpl

@hookimpl
def register_modalities(register):
    raise RuntimeError("a bug in a plugin")
"""


def first_export_holding_the_lock(world: World) -> tuple[object, ...]:
    """A first export to OUT_DIR, stopped (SIGSTOP) while it writes; it goes on when the row's export is done."""
    first = world.start(*export_args(world))
    world.background.append(first)
    wait_for(staging_of(world), "the first export to start writing")
    first.send_signal(signal.SIGSTOP)
    return export_args(world)


def killed_export_left_partials(world: World) -> tuple[object, ...]:
    killed = world.start(*export_args(world))
    wait_for(staging_of(world), "the export to start writing")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (world.root / ".other.partial-abcdefgh").mkdir()  # another OUT_DIR's: not ours to remove
    assert staging_of(world)()
    return export_args(world)


# ---- While the command runs ----


def create_out_dir(world: World, _process: subprocess.Popen) -> None:
    wait_for(staging_of(world), "the export to start writing")
    world.out().mkdir()
    (world.out() / "mine.txt").write_text(MINE["mine.txt"])


def swap_out_dir(world: World, _process: subprocess.Popen) -> None:
    wait_for(staging_of(world), "the export to start writing")
    world.out().rename(world.out("moved"))
    world.out().mkdir()
    (world.out() / "mine.txt").write_text(MINE["mine.txt"])


def signal_once_writing(signum: int) -> Callable[[World, subprocess.Popen], None]:
    def send(world: World, process: subprocess.Popen) -> None:
        wait_for(staging_of(world), "the export to start writing")
        process.send_signal(signum)

    return send


# ---- Afterwards ----


def unchanged(world: World, before: dict[str, str]) -> None:
    assert snapshot(world.root) == before


def only_package(world: World, before: dict[str, str]) -> None:
    """OUT_DIR holds a valid package, and nothing else changed (no lock, no partial left)."""
    after = snapshot(world.root)
    written = {name for name in after if name.startswith("out/")}
    assert "out/model.onnx" in written
    assert {k: v for k, v in after.items() if k not in written} == {
        k: v for k, v in before.items() if not k.startswith((".out.", "out/"))
    }
    assert validate_optimum_compatibility(world.out()).ok


def kept(**folders: dict[str, str]) -> Callable[[World, dict[str, str]], None]:
    """Each named folder holds exactly its files (name -> text); no partial or lock is left."""

    def check(world: World, before: dict[str, str]) -> None:
        for folder, files in folders.items():
            assert {p.name: p.read_text() for p in world.out(folder).iterdir()} == files
        assert not staging_of(world)() and not (world.root / ".out.lock").exists()

    return check


def others_untouched(world: World, before: dict[str, str]) -> None:
    only_package(world, before)
    assert (world.root / ".other.partial-abcdefgh").is_dir()


def first_export_finished(world: World, before: dict[str, str]) -> None:
    world.background[0].send_signal(signal.SIGCONT)
    assert world.background[0].wait(timeout=600) == 0
    only_package(world, before)


# ---- The table ----


@dataclass(frozen=True)
class Row:
    name: str
    setup: Callable[[World], tuple[object, ...]]
    exit_code: int
    says: str  # in the one stderr line ("Error: ..."/"Warning: ..."), or validate's FAIL line when exit 1
    after: Callable[[World, dict[str, str]], None] = unchanged
    during: Callable[[World, subprocess.Popen], None] | None = None


def args(*values: object) -> Callable[[World], tuple[object, ...]]:
    return lambda world: tuple(v(world) if callable(v) else v for v in values)


def out_file(world: World) -> Path:
    world.out().write_text("a file")
    return world.out()


def out_not_empty(world: World) -> Path:
    world.out().mkdir()
    (world.out() / "keep.txt").write_text("mine")
    return world.out()


def out_with_old_package(world: World) -> tuple[object, ...]:
    world.out().mkdir()
    (world.out() / "old.txt").write_text("the previous export")
    return export_args(world, "out", "--force")


def model_dir(world: World) -> Path:
    return world.model


def config_less(world: World) -> Path:
    (world.root / "not-a-model").mkdir()
    (world.root / "not-a-model" / "weights.bin").write_bytes(b"\0")
    return world.root / "not-a-model"


def bad_json_config(world: World) -> Path:
    return model_variant(world, lambda m: (m / "config.json").write_text("{not json"))


def out_dir_is_the_model(where: Callable[[Path], Path]) -> Callable[[World], tuple[object, ...]]:
    """Export a copy of the model with --force into `where(model)`: the model's own folder or one above it."""

    def setup(world: World) -> tuple[object, ...]:
        model = model_variant(world, lambda _: None)
        return ("export", model, where(model), "--force")

    return setup


def with_model(change: Callable[[Path], None], *extra: object) -> Callable[[World], tuple[object, ...]]:
    def setup(world: World) -> tuple[object, ...]:
        model_variant(world, change)
        return export_args(world, "out", *extra)

    return setup


def with_extra(*extra: object) -> Callable[[World], tuple[object, ...]]:
    return lambda world: ("export", world.model, world.out(), *extra)


def disk_full(world: World) -> tuple[object, ...]:
    world.limit_file_size = 64 * 1024  # smaller than the tiny model.onnx
    return export_args(world)


def vit_without_its_plugin(world: World) -> tuple[object, ...]:
    world.env = cli_env(MODELEXPORT_LOAD_PLUGINS="core,text")
    return ("export", write_tiny_vit(world.root / "vit"), world.out(), "--task", "image-classification")


def corrupt_model(world: World) -> Path:
    package = world.copy_package()
    model = package / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    return package


def garbage_metadata(world: World) -> Path:
    package = world.copy_package()
    (package / "export_metadata.json").write_text("[1, 2")
    return package


def load_plugins(value: str) -> Callable[[World], tuple[object, ...]]:
    def setup(world: World) -> tuple[object, ...]:
        world.env = cli_env(MODELEXPORT_LOAD_PLUGINS=value)
        return ("plugins", "list")

    return setup


def plugin(module_text: str | None, *command: str) -> Callable[[World], tuple[object, ...]]:
    """The command (validate on the good package when none) with a broken plugin installed."""

    def setup(world: World) -> tuple[object, ...]:
        broken_plugin(world, module_text)
        return command or ("validate", world.package)

    return setup


ROWS = [
    # Export never destroys what it was not asked to
    Row("out-dir-created-during-export", export_args, 2, "appeared or was replaced", kept(out=MINE), create_out_dir),
    Row(
        "forced-out-dir-swapped-during-export",
        out_with_old_package,
        2,
        "appeared or was replaced",
        kept(out=MINE, moved={"old.txt": "the previous export"}),
        swap_out_dir,
    ),
    Row(
        "second-export-to-the-same-out-dir",
        first_export_holding_the_lock,
        2,
        "Another export to",
        first_export_finished,
    ),
    Row("sigterm-during-export", export_args, 2, "interrupted", unchanged, signal_once_writing(signal.SIGTERM)),
    Row("sigint-during-export", export_args, 2, "interrupted", unchanged, signal_once_writing(signal.SIGINT)),
    Row("stale-partials-of-a-killed-export", killed_export_left_partials, 0, "", others_untouched),
    Row("out-dir-is-a-file", args("export", model_dir, out_file, "--force"), 2, "not a directory"),
    Row("out-dir-not-empty-without-force", args("export", model_dir, out_not_empty), 2, "pass --force"),
    Row("out-dir-is-the-model-with-force", out_dir_is_the_model(lambda model: model), 2, "holds the model"),
    Row("out-dir-holds-the-model-with-force", out_dir_is_the_model(lambda model: model.parent), 2, "holds the model"),
    Row("out-dir-parent-is-a-file", args("export", model_dir, lambda w: out_file(w) / "out"), 2, "Cannot write to"),
    Row("disk-full", disk_full, 2, "Cannot write the package"),
    # Bad models and options
    Row("weights-missing", with_model(lambda m: (m / "model.safetensors").unlink()), 2, "no file named"),
    Row("weights-truncated", with_model(truncate_weights), 2, "Cannot load"),
    Row("weights-all-nan", with_model(nan_weights), 2, "NaN or inf"),
    Row("multiple-choice-on-a-classifier", with_extra("--task", "multiple-choice"), 2, "as AutoModelForMultipleChoice"),
    Row("opset-99", with_extra("--opset", "99"), 2, "--opset takes 18 to 23"),
    Row("nonexistent-model", args("export", lambda w: w.root / "nope", lambda w: w.out()), 2, "not found"),
    Row("hub-id-offline", args("export", "some-org/some-model", lambda w: w.out()), 2, "HF_HUB_OFFLINE=1"),
    Row("directory-without-config", args("export", config_less, lambda w: w.out()), 2, "config.json"),
    Row("config-not-json", args("export", bad_json_config, lambda w: w.out()), 2, "config.json"),
    Row("unknown-task", with_extra("--task", "no-such-task"), 2, "no-such-task"),
    Row("zero-sequence-length", with_extra("--sequence-length", "0"), 2, "sequence"),
    Row("sequence-length-not-a-number", with_extra("--sequence-length", "abc"), 2, "abc"),
    Row("unknown-option", with_extra("--bogus"), 2, "--bogus"),
    Row("modality-plugin-missing", vit_without_its_plugin, 2, "pip install modelexport-vision"),
    # A package that cannot lie
    Row("listed-path-out-of-the-package", listed_fifo_outside, 1, "not a plain relative path"),
    Row("listed-absolute-path", listed_absolute, 1, "not a plain relative path"),
    Row("listed-link-out-of-the-package", listed_link_out, 1, "leads out of the package"),
    Row("config-forged-and-unlisted", forged_config_unlisted, 1, "config.json is in the package but not listed"),
    Row("config-forged", forged_config, 1, "config.json does not match its recorded sha256"),
    Row("task-edited-in-the-metadata", edited_task, 1, "edited after export"),
    Row("extra-file", extra_file, 1, "extra.txt is in the package but not listed"),
    Row("config-naming-its-own-code", custom_code, 1, "needs its own Python code"),
    Row("signed-package", signed, 0, ""),
    Row("signed-package-one-byte-changed", lambda w: signed(w, one_byte_changed), 1, "changed: model.onnx"),
    Row("signed-package-file-added", lambda w: signed(w, lambda p: (p / "x.txt").write_text("")), 1, "added: x.txt"),
    # Other commands on bad packages
    Row("inspect-a-plain-optimum-export", args("inspect", optimum_package), 2, "no modelexport hierarchy tags"),
    Row("inspect-garbage-metadata", args("inspect", garbage_metadata), 2, "not valid JSON"),
    Row("compare-a-truncated-model", args("compare", corrupt_model, "--target", "cpu"), 2, "not a readable ONNX"),
    Row("compare-a-dynamic-package", args("compare", optimum_package, "--target", "cpu"), 2, "dynamic dims"),
    Row("benchmark-nonexistent", args("benchmark", "/nonexistent", "--source", model_dir), 2, "/nonexistent"),
    Row("validate-nonexistent", args("validate", "/nonexistent"), 2, "not found"),
    # Plugins
    Row("plugin-that-fails-to-import", plugin(None), 0, "broken (modelexport-broken) is skipped"),
    Row(
        "plugin-whose-hook-raises",
        plugin(RAISING_HOOK, "plugins", "list"),
        0,
        "broken is skipped: its register_modalities raised",
    ),
    Row("load-plugins-names-nothing-installed", load_plugins("text,nonexistent"), 0, "names nonexistent"),
]


@pytest.fixture
def world(tiny_bert_dir: Path, tiny_bert_export, tmp_path: Path) -> World:
    assert tiny_bert_export.run.returncode == 0, tiny_bert_export.run.stderr
    return World(tmp_path, tiny_bert_dir, tiny_bert_export.out_dir)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_row(row: Row, world: World) -> None:
    command = row.setup(world)
    before = snapshot(world.root)
    process = world.start(*command)
    if row.during:
        row.during(world, process)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == row.exit_code, stdout + stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("> ")]
    if row.exit_code == 1:  # validate: the failed check says why
        assert lines == [] and any(line.startswith("FAIL") and row.says in line for line in stdout.splitlines())
    elif row.says:
        assert len(lines) == 1 and row.says in lines[0], stderr
        assert lines[0].startswith("Error: " if row.exit_code else "Warning: ")
    else:
        assert lines == [], stderr
    row.after(world, before)
    assert not (world.root / "code-ran").exists()  # a package's own code never runs unasked


# ---- Rows through the Python API ----


def test_one_pipeline_shared_by_four_threads_answers_as_it_does_alone(tiny_bert_export) -> None:
    pipe = create_pipeline(TASK, tiny_bert_export.out_dir, batch_size=2)
    texts = [[f"text {i} of thread {t} " * (1 + i % 5) for i in range(32)] for t in range(4)]
    alone = [pipe(batch) for batch in texts]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(pipe, texts))
    assert together == alone


ODD_TEXTS = {
    "empty": "",
    "emoji": "🙂🚀👍🏽" * 5,
    "right-to-left": "שלום עולם مرحبا بالعالم",
    "a million characters": "word " * 200_000,
}


@pytest.mark.parametrize("text", list(ODD_TEXTS.values()), ids=list(ODD_TEXTS))
def test_odd_texts_get_the_pytorch_answer(text: str, tiny_bert_dir: Path, tiny_bert_export) -> None:
    from transformers import pipeline

    ours = create_pipeline(TASK, tiny_bert_export.out_dir)(text)
    theirs = pipeline(TASK, model=str(tiny_bert_dir))(text, truncation=True, max_length=16)
    assert ours[0]["label"] == theirs[0]["label"]
    assert ours[0]["score"] == pytest.approx(theirs[0]["score"], abs=1e-4)


# ---- Hostile export_metadata.json ----

PATH = st.text(alphabet="./\\abc:~", max_size=12)
SHA256 = st.text("0123456789abcdef", max_size=64)
EXTRA_KEYS = st.dictionaries(st.text(max_size=5), st.none() | st.integers() | st.text(max_size=3), max_size=2)
ENTRY = st.tuples(st.fixed_dictionaries({"path": PATH, "sha256": SHA256}), EXTRA_KEYS).map(lambda t: {**t[1], **t[0]})
METADATA = st.one_of(
    st.fixed_dictionaries({"files": st.lists(ENTRY, min_size=1, max_size=3)}, optional={"task": st.text()}),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=METADATA)
def test_hostile_metadata_never_passes_and_never_crashes(tiny_bert_export, tmp_path: Path, metadata: Any) -> None:
    package = tmp_path / "pkg"
    if not package.exists():
        shutil.copytree(tiny_bert_export.out_dir, package)
    (package / "export_metadata.json").write_text(json.dumps(metadata))
    report = validate_optimum_compatibility(package)
    files = report.checks[0]
    assert not report.ok and not files.ok and files.detail and "\n" not in files.detail
