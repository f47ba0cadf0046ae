"""Issue 12's bad inputs, run through the CLI in-process; prints how many give a clean refusal.

A clean refusal is exit code 2, one line on stderr, no traceback, nothing on stdout and no output file
written. A traceback is an exception escaping the command. A silent wrong answer is exit 0 for an input
that must be refused (or whose output is wrong: `Infinity` in JSON, NaN in an export).

    python benchmarks/hardening.py [--verbose]

The generated inputs (hypothesis, over every option and over mutations of every file format) are in
tests/test_hardening.py: `pytest tests/test_hardening.py --hypothesis-show-statistics` counts them, and
FUZZ_SCALE=20 runs twenty times as many.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import io
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from unittest import mock

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typer.testing import CliRunner  # noqa: E402

from cli.main import app  # noqa: E402

ARCH = ",".join(["k3e3"] * 12)
BOUNDS = ["latency", "flops", "params", "intensity", "peak-memory"]
TRAIN = [
    "train",
    "--space",
    "cifar10",
    "--data",
    "{data}",
    "--width",
    "0.25",
    "--resolution",
    "16",
    "--epochs",
    "1",
    "--val-per-class",
    "2",
    "--finetune-epochs",
    "0.1",
    "--batch-size",
    "16",
    "--calib-images",
    "10",
    "--spread-samples",
    "2",
]


def train_args(out: str, **changes: str) -> list[str]:
    args = TRAIN + ["-o", out]
    for flag, value in changes.items():
        flag = "--" + flag.replace("_", "-")
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args


@contextlib.contextmanager
def unreadable(*paths: str):
    """Simulate a file the user cannot read (the tests run as root): opening it raises PermissionError."""
    real_open, real_os_open = builtins.open, os.open
    blocked = {str(Path(p).resolve()) for p in paths}

    def check(file) -> None:
        if isinstance(file, (str, os.PathLike)) and str(Path(file).resolve()) in blocked:
            raise PermissionError(13, "Permission denied", str(file))

    def fake_open(file, *a, **k):
        check(file)
        return real_open(file, *a, **k)

    def fake_os_open(file, *a, **k):
        check(file)
        return real_os_open(file, *a, **k)

    with mock.patch("builtins.open", fake_open), mock.patch("io.open", fake_open), mock.patch("os.open", fake_os_open):
        yield


class Fixtures:
    """Valid and corrupt files in one temporary directory."""

    def __init__(self, root: Path):
        from specialize.table import DEFAULT_TABLE

        self.root = root
        self.table = json.loads(DEFAULT_TABLE.read_text())
        self.default_weights = DEFAULT_TABLE.parent / self.table["weights"]["file"]

    def path(self, name: str) -> str:
        return str(self.root / name)

    def write(self, name: str, data) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(path)

    def table_with(self, name: str, edit) -> str:
        data = json.loads(json.dumps(self.table))
        data["weights"] = None
        edit(data)
        return self.write(name, data)

    def profile(self, name: str, edit=lambda d: None) -> str:
        from hw_profiles import resolve_profile
        from specialize.space import get_space

        data = resolve_profile("jetson", get_space("cifar10")).to_dict()
        edit(data)
        return self.write(name, data)

    def weights(self, name: str, edit) -> str:
        import torch

        payload = torch.load(self.default_weights, map_location="cpu", weights_only=True)
        edit(payload)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return self.write(name, buffer.getvalue())

    def bundle(self, name: str, edit_manifest=lambda m: None, edit_results=lambda r: None) -> str:
        from hw_profiles.workloads import space_workloads
        from specialize.space import get_space

        space = get_space("cifar10")
        entries = [
            {
                "key": w.key,
                "file": f"onnx/{i}.onnx",
                "input_shape": list(w.input_shape),
                "layer": w.layer,
                "candidate": w.candidate,
                "arch": None,
            }
            for i, w in enumerate(space_workloads(space, 1))
        ]
        manifest = {
            "schema_version": 1,
            "kind_of_file": "profile_bundle",
            "space": space.to_dict(),
            "space_name": space.name,
            "fingerprint": space.fingerprint,
            "batch": 1,
            "entries": entries,
        }
        results = {
            "schema_version": 1,
            "name": "dev",
            "runner": "onnxruntime",
            "results": {e["key"]: {"median_ms": 0.5, "iqr_ms": 0.01, "samples": 9} for e in entries},
        }
        edit_manifest(manifest)
        edit_results(results)
        self.write(f"{name}/manifest.json", manifest)
        self.write(f"{name}/results.json", results)
        return self.path(name)

    def linked_log(self, name: str) -> str:
        run = self.root / name
        run.mkdir()
        (run / "log.jsonl").symlink_to(self.root / "victim.txt")
        return str(run)

    def bad_images(self) -> str:
        """An image folder whose files are not images."""
        target = self.root / "bad-images"
        for split in ("train", "test"):
            for cls in ("a", "b"):
                (target / split / cls).mkdir(parents=True, exist_ok=True)
                (target / split / cls / "x.jpg").write_text("not an image")
        return str(target)

    def data(self) -> str:
        from supernet.data import make_synthetic_folder

        target = self.root / "data"
        if not target.exists():
            make_synthetic_folder(target, classes=10, train_per_class=8, test_per_class=3, size=16)
        return str(target)

    def checkpoint(self, name: str, content: bytes | None = None, payload: dict | None = None) -> str:
        import torch

        out = self.root / name
        out.mkdir(parents=True, exist_ok=True)
        if payload is not None:
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            content = buffer.getvalue()
        (out / "checkpoint.pt").write_bytes(content or b"")
        return str(out)


def _set(path: list, value):
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def cases(fx: Fixtures) -> list[tuple[str, str, list[str], dict]]:
    """(kind, name, argv, options): kind 'refuse' must give a clean exit 2; options may hold
    'absent' (a path that must not be written), 'unreadable' (paths to block) or 'json_ok' (exit 0 allowed
    when stdout is strict JSON with finite numbers)."""
    out = [
        ("refuse", f"--{s}-{b} 1e999999999", ["--device", "jetson", f"--{s}-{b}", "1e999999999"], {})
        for b in BOUNDS
        for s in ("max", "min")
    ]
    out += [
        ("refuse", "--seed -1", ["--device", "jetson", "--seed", "-1"], {}),
        ("refuse", "train --seed -1", train_args(fx.path("r-seed"), seed="-1"), {"absent": fx.path("r-seed")}),
        (
            "refuse",
            "--table unreadable",
            ["--device", "jetson", "--table", fx.write("u.table.json", json.dumps(fx.table))],
            {"unreadable": [fx.path("u.table.json")]},
        ),
        (
            "refuse",
            "table show unreadable",
            ["table", "show", "--table", fx.path("u.table.json")],
            {"unreadable": [fx.path("u.table.json")]},
        ),
        (
            "refuse",
            "export --weights unreadable",
            ["export", "--arch", ARCH, "--weights", fx.write("u.weights.pt", b"x"), "-o", fx.path("u.onnx")],
            {"unreadable": [fx.path("u.weights.pt")], "absent": fx.path("u.onnx")},
        ),
        (
            "refuse",
            "cost --profile unreadable",
            ["cost", "--arch", ARCH, "--profile", fx.profile("u.profile.json")],
            {"unreadable": [fx.path("u.profile.json")]},
        ),
        ("refuse", "cost --batch 1e20", ["cost", "--arch", ARCH, "--batch", "99999999999999999999"], {}),
        ("refuse", "cost --dtype-bytes 2^63-1", ["cost", "--arch", ARCH, "--dtype-bytes", "9223372036854775807"], {}),
        (
            "refuse",
            "cost --batch 2e12 (negative bytes)",
            ["cost", "--arch", ARCH, "--batch", "2000000000000", "--json"],
            {},
        ),
        (
            "refuse",
            "empty weights file",
            ["export", "--arch", ARCH, "--weights", fx.write("empty.pt", b""), "-o", fx.path("e.onnx")],
            {"absent": fx.path("e.onnx")},
        ),
        ("refuse", "train -o existing file", train_args(fx.write("afile", "x")), {}),
        ("refuse", "train -o /proc/run", train_args("/proc/run"), {}),
        ("refuse", "train -o unwritable parent", train_args("/proc/self/x/run"), {}),
    ]
    for flag, value in [
        ("batch_size", "0"),
        ("val_per_class", "0"),
        ("finetune_epochs", "nan"),
        ("finetune_epochs", "inf"),
        ("lr", "-1"),
        ("batch_size", "-1"),
        ("threads", "-1"),
        ("resolution", "-1"),
        ("calib_images", "-1"),
        ("val_per_class", "-1"),
        ("lr", "nan"),
        ("lr", "inf"),
        ("calib_images", "0"),
        ("finetune_epochs", "-1"),
        ("resolution", "0"),
    ]:
        run = fx.path(f"r-{flag}-{value}")
        out.append(
            ("refuse", f"train --{flag.replace('_', '-')} {value}", train_args(run, **{flag: value}), {"absent": run})
        )
    out += [
        ("refuse", "markup in --table", ["--device", "jetson", "--table", "/tmp/x[/bold].json"], {}),
        ("refuse", "markup --device '[/]'", ["--device", "[/]"], {}),
        ("refuse", "markup --max-flops '3[/]'", ["--device", "jetson", "--max-flops", "3[/]"], {}),
        (
            "refuse",
            "profile named evil[/bold]",
            ["--profile", fx.profile("evil.json", _set(["name"], "evil[/bold]")), "--max-flops", "1k"],
            {"text": "evil[/bold]"},
        ),
        ("refuse", "[red] in a path", ["--device", "jetson", "--table", "/tmp/[red]x.json"], {"text": "[red]x.json"}),
        (
            "refuse",
            "[layers][candidates] message",
            ["--profile", fx.profile("ll.json", _set(["latency_ms"], "x"))],
            {"text": "[12][12]"},
        ),
        (
            "refuse",
            "table cell 'abc'",
            ["table", "show", "--table", fx.table_with("t1.json", _set(["accuracy", 0, 0], "abc"))],
            {},
        ),
        (
            "refuse",
            "table cell {}",
            ["table", "show", "--table", fx.table_with("t2.json", _set(["accuracy", 0, 0], {}))],
            {},
        ),
        (
            "refuse",
            "table ragged row",
            ["table", "show", "--table", fx.table_with("t3.json", lambda d: d["accuracy"][0].pop())],
            {},
        ),
        (
            "refuse",
            "table accuracy 'lots'",
            ["table", "show", "--table", fx.table_with("t4.json", _set(["accuracy"], "lots"))],
            {},
        ),
        (
            "refuse",
            "table nested 200k deep",
            ["table", "show", "--table", fx.write("t5.json", "[" * 200000 + "]" * 200000)],
            {},
        ),
        (
            "refuse",
            "table accuracy x100",
            [
                "--max-flops",
                "300M",
                "--table",
                fx.table_with("t6.json", lambda d: d.update(accuracy=[[v * 100 for v in r] for r in d["accuracy"]])),
            ],
            {},
        ),
        (
            "refuse",
            "table accuracy negative",
            ["table", "show", "--table", fx.table_with("t7.json", _set(["accuracy", 0, 0], -0.5))],
            {},
        ),
        (
            "refuse",
            "table accuracy boolean",
            ["table", "show", "--table", fx.table_with("t8.json", _set(["accuracy", 0, 0], True))],
            {},
        ),
        (
            "refuse",
            "table accuracy numeric string",
            ["table", "show", "--table", fx.table_with("t9.json", _set(["accuracy", 0, 0], "0.5"))],
            {},
        ),
        (
            "refuse",
            "table accuracy 1e308",
            ["table", "show", "--table", fx.table_with("t10.json", _set(["accuracy", 0, 0], 1e308))],
            {},
        ),
        (
            "refuse",
            "weights space 'abc'",
            [
                "export",
                "--arch",
                ARCH,
                "-o",
                fx.path("w1.onnx"),
                "--weights",
                fx.weights("w1.pt", _set(["space"], "abc")),
            ],
            {"absent": fx.path("w1.onnx")},
        ),
        (
            "refuse",
            "weights state_dict list",
            [
                "export",
                "--arch",
                ARCH,
                "-o",
                fx.path("w2.onnx"),
                "--weights",
                fx.weights("w2.pt", _set(["state_dict"], [1, 2])),
            ],
            {"absent": fx.path("w2.onnx")},
        ),
        (
            "refuse",
            "weights full of NaN",
            [
                "export",
                "--arch",
                ARCH,
                "-o",
                fx.path("w3.onnx"),
                "--weights",
                fx.weights(
                    "w3.pt",
                    lambda p: [v.fill_(float("nan")) for v in p["state_dict"].values() if v.is_floating_point()],
                ),
            ],
            {"absent": fx.path("w3.onnx")},
        ),
        (
            "refuse",
            "resume truncated checkpoint",
            train_args(fx.checkpoint("c1", b"PK\x03\x04trunc")) + ["--resume"],
            {},
        ),
        ("refuse", "resume text checkpoint", train_args(fx.checkpoint("c2", b"hello")) + ["--resume"], {}),
        ("refuse", "resume pickled checkpoint", train_args(fx.checkpoint("c3", _pickled())) + ["--resume"], {}),
        (
            "refuse",
            "resume checkpoint without net",
            train_args(fx.checkpoint("c4", payload={"config": {}, "state_json": "{}"})) + ["--resume"],
            {},
        ),
        ("refuse", "resume empty checkpoint", train_args(fx.checkpoint("c5", b"")) + ["--resume"], {}),
        (
            "refuse",
            "import NaN median",
            [
                "profile",
                "import",
                fx.bundle("b1", edit_results=lambda r: r["results"]["stem"].update(median_ms=float("nan"))),
                "-o",
                fx.path("b1.json"),
            ],
            {"absent": fx.path("b1.json")},
        ),
        (
            "refuse",
            "import manifest without entries",
            ["profile", "import", fx.bundle("b2", lambda m: m.pop("entries")), "-o", fx.path("b2.json")],
            {"absent": fx.path("b2.json")},
        ),
        (
            "refuse",
            "import entries 'x'",
            ["profile", "import", fx.bundle("b3", _set(["entries"], "x")), "-o", fx.path("b3.json")],
            {"absent": fx.path("b3.json")},
        ),
        (
            "refuse",
            "import batch 'abc'",
            ["profile", "import", fx.bundle("b4", _set(["batch"], "abc")), "-o", fx.path("b4.json")],
            {"absent": fx.path("b4.json")},
        ),
        (
            "refuse",
            "import entry without key",
            ["profile", "import", fx.bundle("b5", lambda m: m["entries"][0].pop("key")), "-o", fx.path("b5.json")],
            {"absent": fx.path("b5.json")},
        ),
        (
            "refuse",
            "import negative latency",
            [
                "profile",
                "import",
                fx.bundle("b6", edit_results=lambda r: r["results"]["stem"].update(median_ms=-5.0)),
                "-o",
                fx.path("b6.json"),
            ],
            {"absent": fx.path("b6.json")},
        ),
        (
            "refuse",
            "profile offset -1000 ms",
            [
                "--profile",
                fx.profile("off.json", _set(["calibration"], {"scale": 1.0, "offset_ms": -1000.0})),
                "--max-flops",
                "300M",
                "--json",
            ],
            {},
        ),
        (
            "refuse",
            "profile latency 1e308",
            ["--profile", fx.profile("big.json", _set(["latency_ms", 0, 0], 1e308)), "--json"],
            {},
        ),
        ("refuse", "--max-flops 1e400 --json", ["--device", "jetson", "--max-flops", "1e400", "--json"], {}),
        ("refuse", "--max-flops 1e400", ["--device", "jetson", "--max-flops", "1e400"], {}),
        ("refuse", "--device ''", ["--device", "", "--max-flops", "300M"], {}),
        ("refuse", "pareto --generations -5", ["pareto", "--objective", "macs", "--generations", "-5"], {}),
        ("refuse", "directory as --table", ["--device", "jetson", "--table", str(fx.root)], {"text": "directory"}),
        (
            "refuse",
            "profile bundle -o FILE",
            ["profile", "bundle", "--space", "cifar10", "-o", fx.write("bfile", "x")],
            {"text": "not a directory"},
        ),
        (
            "refuse",
            "profile bundle -o unwritable",
            ["profile", "bundle", "--space", "cifar10", "-o", "/proc/self/bundle"],
            {},
        ),
        ("refuse", "train log.jsonl is a planted symlink", train_args(fx.linked_log("r-link")), {"text": "symlink"}),
        (
            "refuse",
            "second train into a locked -o",
            train_args(fx.path("r-locked")),
            {"locked": fx.path("r-locked"), "text": "another"},
        ),
        (
            "refuse",
            "tensorrt export over an existing x.onnx",
            ["export", "--arch", ARCH, "--format", "tensorrt", "-o", fx.path("trt/x.engine")],
            {"text": "overwrite", "setup": lambda: fx.write("trt/x.onnx", "mine")},
        ),
        ("refuse", "fullwidth digit k３e3", ["cost", "--arch", ",".join(["k３e3"] + ["k3e3"] * 11)], {}),
        ("refuse", "leading zero k03e3", ["cost", "--arch", ",".join(["k03e3"] + ["k3e3"] * 11)], {}),
        # issue 19, second pass: side effects before validation ends, and the precision options
        (
            "refuse",
            "train on unreadable images leaves no run directory",
            ["train", "--space", "cifar10", "--data", fx.bad_images(), "-o", fx.path("r-bad-images"), "--epochs", "1"],
            {"absent": fx.path("r-bad-images"), "text": "unreadable image"},
        ),
        (
            "refuse",
            "export -o a 245-byte file name",
            ["export", "--arch", ARCH, "--untrained", "-o", fx.path("m" * 240 + ".onnx")],
            {"absent": fx.path("m" * 240 + ".onnx"), "text": "file name is 245 bytes"},
        ),
        ("refuse", "--precision int4", ["--device", "jetson", "--precision", "int4"], {"text": "unknown precision"}),
        ("refuse", "--precision int8, no int8 figure", ["--device", "jetson", "--precision", "int8"], {}),
        (
            "refuse",
            "--precision auto with a profile file",
            ["--profile", fx.profile("auto.json"), "--precision", "auto"],
            {"text": "one precision"},
        ),
        (
            "refuse",
            "export --precision fp16 to ONNX",
            ["export", "--arch", ARCH, "--untrained", "--precision", "fp16", "-o", fx.path("fp16.onnx")],
            {"absent": fx.path("fp16.onnx")},
        ),
        ("refuse", "table int8-check --networks 1", ["table", "int8-check", "--networks", "1"], {}),
    ]
    return out


def _pickled() -> bytes:
    """A torch zip whose pickle calls a global: weights_only loading must refuse it."""
    import torch

    buffer = io.BytesIO()
    torch.save({"config": {}, "net": Path("/")}, buffer)
    return buffer.getvalue()


def classify(result, kind: str, options: dict) -> str:
    """'clean', 'traceback', 'silent' (exit 0: accepted) or 'unclear' (exit 2 but not one clean line, or exit 1)."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    stderr = result.stderr.strip()
    if "Traceback" in result.output or "Traceback" in stderr:
        return "traceback"
    if result.exit_code == 0:
        return "silent"
    if options.get("absent") and Path(options["absent"]).exists():
        return "unclear"
    if "text" in options and options["text"] not in stderr.replace("\n", ""):
        return "unclear"
    if result.exit_code != 2 or len(stderr.splitlines()) != 1 or result.stdout.strip():
        return "unclear"
    return "clean"


def run_case(runner: CliRunner, argv: list[str], options: dict):
    if "setup" in options:
        options["setup"]()
    with unreadable(*options.get("unreadable", [])), locked(options.get("locked")):
        return runner.invoke(app, argv)


@contextlib.contextmanager
def locked(run_dir: str | None):
    """Hold a run directory's lock as a concurrent `train` would."""
    if run_dir is None:
        yield
        return
    from supernet.run_dir import lock_run_dir, make_run_dir, unlock

    make_run_dir(Path(run_dir))
    fd = lock_run_dir(Path(run_dir))
    try:
        yield
    finally:
        unlock(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case and its stderr")
    args = parser.parse_args()
    runner = CliRunner()
    counts = {"clean": 0, "traceback": 0, "silent": 0, "unclear": 0}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPECIALIZE_CACHE"] = str(Path(tmp) / "cache")  # decoded synthetic images stay in the temporary dir
        fx = Fixtures(Path(tmp))
        all_cases = cases(fx)
        data = fx.data()
        raised = (0, "")  # the most any one case raised this process's peak memory, and which
        for kind, name, argv, options in all_cases:
            argv = [a.replace("{data}", data) for a in argv]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            result = run_case(runner, argv, options)
            raised = max(raised, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, name))
            verdict = classify(result, kind, options)
            counts[verdict] += 1
            if args.verbose or verdict != "clean":
                detail = repr(result.exception) if verdict == "traceback" else result.stderr.strip()[:300]
                print(f"{verdict:9s} {name}: exit {result.exit_code}: {detail}")
    total = sum(counts.values())
    print(f"bad inputs tried: {total}")
    print(f"clean exit 2 (one line, nothing written): {counts['clean']}")
    print(f"tracebacks: {counts['traceback']} (goal 0)")
    print(f"silent wrong answers (accepted): {counts['silent']} (goal 0)")
    print(f"other (exit 2 without one clean line, exit 1, or a file written): {counts['unclear']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory of the whole run: {peak:.0f} MB; the most one case raised it: {raised[0] / 1024:.0f} MB "
        f"({raised[1] or 'none'}) (goal: under 500 MB for any file under 1 MB)"
    )


if __name__ == "__main__":
    main()
