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
from specialize.table import EMBEDDED_TABLES  # noqa: E402

ARCH = ",".join(["k3e3"] * 12)
CIFAR10_TABLE = EMBEDDED_TABLES["cifar10"]  # the cases are written for its 12-layer space
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
        self.root = root
        self.table = json.loads(CIFAR10_TABLE.read_text())
        self.default_weights = CIFAR10_TABLE.parent / self.table["weights"]["file"]

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

    def damage_cache(self) -> None:
        """Decode the training data into the cache, then truncate one of its arrays as a full disk would."""
        from supernet.data import load_dataset

        load_dataset(self.data(), image_size=16)
        cache = Path(os.environ["SPECIALIZE_CACHE"])
        for victim in cache.rglob("train_images.npy"):  # every entry: earlier cases cached this data at other sizes
            victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])

    def fifo(self, name: str) -> str:
        os.mkfifo(self.root / name)
        return self.path(name)

    def default_run(self, name: str, edit_weights: bool = False) -> str:
        """A copy of the embedded default run (table, weights, calibration) in `name`/; with `edit_weights`, weights
        other than the ones the table recorded."""
        import shutil

        run = self.root / name
        run.mkdir(parents=True, exist_ok=True)
        for entry in ("weights", "calibration"):
            shutil.copyfile(CIFAR10_TABLE.parent / self.table[entry]["file"], run / self.table[entry]["file"])
        shutil.copyfile(CIFAR10_TABLE, run / "table.json")
        if edit_weights:
            weights = run / self.table["weights"]["file"]
            weights.write_bytes(weights.read_bytes()[:-8] + b"12345678")
        return str(run / "table.json")

    def other_classes(self, name: str, renamed: bool = False) -> str:
        """A small image folder: 3 classes, or the default's 10 classes with two of them renamed."""
        from supernet.data import make_synthetic_folder

        target = self.root / name
        if renamed:
            make_synthetic_folder(target, classes=10, train_per_class=2, test_per_class=1, size=32)
            names = self.table["space"]["class_names"]
            for split in ("train", "test"):
                for i, folder in enumerate(sorted((target / split).iterdir(), key=lambda p: int(p.name[5:]))):
                    folder.rename(folder.with_name(names[i] if i > 1 else f"renamed{i}"))
        else:
            make_synthetic_folder(target, classes=3, train_per_class=2, test_per_class=1, size=32)
        return str(target)

    def png_bomb(self, name: str) -> str:
        """A 10-class folder in which one file is a 100-byte PNG declaring 9000 x 9000 pixels."""
        from supernet.data import png_declaring

        target = self.other_classes(name, renamed=False)
        victim = next((Path(target) / "train").rglob("*.*"))
        victim.write_bytes(png_declaring(9000, 9000))
        return target

    def big_member_archive(self, name: str, member_bytes: int) -> str:
        """A .tar.gz of a 2-class folder plus one all-zero member of `member_bytes` (it compresses about 1000:1)."""
        import tarfile

        from supernet.data import make_synthetic_folder

        root = self.root / (name + "-src")
        make_synthetic_folder(root, classes=2, train_per_class=2, test_per_class=1, size=16)
        path = self.root / name
        with tarfile.open(path, "w:gz") as tar:
            tar.add(root, arcname="d")
            member = tarfile.TarInfo("d/train/class0/huge.png")
            member.size = member_bytes
            tar.addfile(member, _Zeros(member_bytes))
        return str(path)

    def space_profile(self, name: str, kernels: int, expansions: int) -> str:
        """A profile whose space lists `kernels` x `expansions` candidates (small file, huge arrays if trusted)."""

        def edit(data):
            data["space"]["kernels"] = list(range(3, 3 + 2 * kernels, 2))
            data["space"]["expansions"] = list(range(1, expansions + 1))

        return self.profile(name, edit)

    def this_cpu_profile(self, name: str, edit=lambda d: None) -> str:
        source = Path(__file__).resolve().parents[1] / "hw_profiles/data/this-cpu-onnxruntime.cifar10.json"
        data = json.loads(source.read_text())
        edit(data)
        return self.write(name, data)


class _Zeros(io.RawIOBase):
    """A file of `n` zero bytes that holds none of them."""

    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def _edited_json(path: str, keys: list, value) -> dict:
    """The JSON file at `path` with the entry at `keys` set to `value`."""
    data = json.loads(Path(path).read_text())
    _set(keys, value)(data)
    return data


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
            [
                "export",
                "--space",
                "cifar10",
                "--arch",
                ARCH,
                "--weights",
                fx.write("u.weights.pt", b"x"),
                "-o",
                fx.path("u.onnx"),
            ],
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
            [
                "export",
                "--space",
                "cifar10",
                "--arch",
                ARCH,
                "--weights",
                fx.write("empty.pt", b""),
                "-o",
                fx.path("e.onnx"),
            ],
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
            [
                "--profile",
                fx.profile("evil.json", _set(["name"], "evil[/bold]")),
                "--table",
                "cifar10",
                "--max-flops",
                "1k",
            ],
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
                "--space",
                "cifar10",
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
                "--space",
                "cifar10",
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
                "--space",
                "cifar10",
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
            ["export", "--space", "cifar10", "--arch", ARCH, "--format", "tensorrt", "-o", fx.path("trt/x.engine")],
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
            ["export", "--space", "cifar10", "--arch", ARCH, "--untrained", "-o", fx.path("m" * 240 + ".onnx")],
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
            "--precision fp16 on this-cpu (no fp16 profile) with --export",
            ["--device", "this-cpu", "--precision", "fp16", "--export", fx.path("fp16.onnx")],
            {"absent": fx.path("fp16.onnx"), "text": "fp16"},
        ),
        ("refuse", "table int8-check --networks 1", ["table", "int8-check", "--networks", "1"], {}),
    ]
    return out + issue19_cases(fx)


def _weights_declaring(channels: int):
    def edit(payload):
        import torch

        space = payload["space"]
        for layer in space["layers"]:
            layer["in_channels"] = layer["out_channels"] = channels
        space["first_block_channels"] = channels
        payload["state_dict"] = {"w": torch.zeros(4)}

    return edit


def issue19_cases(fx: Fixtures) -> list[tuple[str, str, list[str], dict]]:
    """Issue 19's classes, one or more cases each: 1 outputs that are not regular files, 2 an output that is an
    input, 3-4 exports trusting the wrong data or weights, 5 a damaged cache (must work, and say so), 6 small files
    that would allocate gigabytes, 7 loaders' fields, 8 side effects before validation ends, 9 terminal escapes,
    10 a base profile from another host, 11 silent disagreements."""
    esc = "\x1b]0;pwned\x07\x1b[2J"
    results_json = fx.bundle("same-bundle") + "/results.json"
    same_table = fx.default_run("same-run")
    same_weights = fx.write("same.pt", b"not really weights")
    build_script = fx.write("trt2/build_x_engine.sh", "#!/bin/sh\necho mine\n")
    shipped_t1 = str(Path(__file__).resolve().parents[1] / "hw_profiles/data/this-cpu-onnxruntime.cifar10.json")
    elsewhere_t1 = fx.write(  # the shipped profile as if timed on another machine, whichever machine this is
        "elsewhere-t1.json", _edited_json(shipped_t1, ["hardware", "host_cpu"], "Imaginary CPU 9000")
    )
    return [
        # 1
        (
            "refuse",
            "19.1 export -o a named pipe",
            ["export", "--space", "cifar10", "--arch", ARCH, "--untrained", "-o", fx.fifo("p1")],
            {"text": "not a regular file", "fifo": fx.path("p1")},
        ),
        (
            "refuse",
            "19.1 --export a named pipe",
            ["--device", "jetson", "--export", fx.fifo("p2")],
            {"text": "not a regular file", "fifo": fx.path("p2")},
        ),
        # 2
        (
            "refuse",
            "19.2 --table T --export T",
            ["--table", same_table, "--export", same_table],
            {"text": "destroy the input", "inputs": [same_table]},
        ),
        (
            "refuse",
            "19.2 export --weights W -o W",
            ["export", "--space", "cifar10", "--arch", ARCH, "--weights", same_weights, "-o", same_weights],
            {"text": "destroy the input", "inputs": [same_weights]},
        ),
        (
            "refuse",
            "19.2 profile import B -o B/results.json",
            ["profile", "import", str(Path(results_json).parent), "-o", results_json],
            {"text": "destroy the input", "inputs": [results_json]},
        ),
        # 3, 4
        (
            "refuse",
            "19.3 export --data with 3 classes on a 10-class model",
            ["--device", "jetson", "--export", fx.path("c3.onnx"), "--data", fx.other_classes("three")],
            {"absent": fx.path("c3.onnx"), "text": "has classes"},
        ),
        (
            "refuse",
            "19.3 export --data with two class folders renamed",
            ["--device", "jetson", "--export", fx.path("c3r.onnx"), "--data", fx.other_classes("renamed", True)],
            {"absent": fx.path("c3r.onnx"), "text": "has classes"},
        ),
        (
            "refuse",
            "19.4 weights beside a copy of the table are not its weights",
            ["--table", fx.default_run("edited-run", edit_weights=True), "--export", fx.path("c4.onnx")],
            {"absent": fx.path("c4.onnx"), "text": "is not the one accuracy table"},
        ),
        # 5
        (
            "works",
            "19.5 a truncated cache entry is rebuilt, and said",
            train_args(fx.path("r-cache")),
            {"setup": fx.damage_cache, "text": "was damaged"},
        ),
        # 6
        (
            "refuse",
            "19.6 profile whose space lists 2000 kernels x 2000 expansions",
            ["--profile", fx.space_profile("k2000.json", 2000, 2000)],
            {},
        ),
        (
            "refuse",
            "19.6 weights file declaring 1500-channel layers",
            [
                "export",
                "--space",
                "cifar10",
                "--arch",
                ARCH,
                "--weights",
                fx.weights("w1500.pt", _weights_declaring(1500)),
                "-o",
                fx.path("w1500.onnx"),
            ],
            {"absent": fx.path("w1500.onnx")},
        ),
        (
            "refuse",
            "19.6 archive with a 512 MiB member",
            ["table", "validate", "--data", fx.big_member_archive("big.tar.gz", 512 * 2**20), "--samples", "2"],
            {"text": "limit for one image file"},
        ),
        (
            "refuse",
            "19.6 100-byte PNG declaring 9000x9000",
            ["table", "validate", "--data", fx.png_bomb("bomb")],
            {"text": "too large to decode safely"},
        ),
        (
            "refuse",
            "19.6 profile bundle --batch 20000",
            ["profile", "bundle", "--space", "cifar10", "--batch", "20000", "-o", fx.path("b20000")],
            {"text": "GiB of activations", "absent": fx.path("b20000/onnx")},
        ),
        # 7
        (
            "refuse",
            "19.7 profile 'hardware' a list",
            ["--profile", fx.this_cpu_profile("h.json", _set(["hardware"], [1]))],
            {},
        ),
        (
            "refuse",
            "19.7 profile expected_error 'abc'",
            ["--profile", fx.this_cpu_profile("ee.json", _set(["expected_error"], "abc"))],
            {},
        ),
        (
            "refuse",
            "19.7 profile measurement.whole_network malformed",
            ["--profile", fx.this_cpu_profile("wn.json", _set(["measurement", "whole_network"], "x"))],
            {},
        ),
        (
            "refuse",
            "19.7 bundle results threads 'abc'",
            ["profile", "import", fx.bundle("thr", edit_results=_set(["threads"], "abc")), "-o", fx.path("thr.json")],
            {"absent": fx.path("thr.json")},
        ),
        (
            "refuse",
            "19.7 bundle results threads 10**400",
            [
                "profile",
                "import",
                fx.bundle("thr2", edit_results=_set(["threads"], 10**400)),
                "-o",
                fx.path("thr-big.json"),
            ],
            {"absent": fx.path("thr-big.json")},
        ),
        (
            "refuse",
            "19.7 bundle timing Infinity",
            [
                "profile",
                "import",
                fx.bundle("inf", edit_results=_set(["results", "stem", "median_ms"], float("inf"))),
                "-o",
                fx.path("inf.json"),
            ],
            {"absent": fx.path("inf.json")},
        ),
        (
            "refuse",
            "19.7 table space with even kernels",
            ["--table", fx.table_with("ek.json", _set(["space", "kernels"], [2, 4]))],
            {},
        ),
        (
            "refuse",
            "19.7 table space with duplicate kernels",
            ["--table", fx.table_with("dk.json", _set(["space", "kernels"], [3, 3, 5]))],
            {},
        ),
        (
            "refuse",
            "19.7 table space with a broken channel chain",
            ["--table", fx.table_with("cc.json", _set(["space", "layers", 1, "in_channels"], 999))],
            {},
        ),
        (
            "refuse",
            "19.7 table class names disagree with num_classes",
            ["--table", fx.table_with("cn.json", _set(["space", "num_classes"], 7))],
            {},
        ),
        (
            "refuse",
            "19.7 table space with 10**12 channels",
            ["--table", fx.table_with("hc.json", _set(["space", "layers", 0, "out_channels"], 10**12))],
            {},
        ),
        (
            "refuse",
            "19.7 proxy-check checkpoint accuracy 5.0",
            [
                "proxy-check",
                "--space",
                "cifar10",
                "--data",
                "{data}",
                "--zoo",
                "3",
                "--checkpoint",
                fx.write("pc.json", {"key": {}, "accuracies": {"c0r0s0e1": [5.0]}}),
            ],
            {"text": "missing or malformed"},
        ),
        # 8
        (
            "refuse",
            "19.8 train into a finished run without --resume leaves no lock file",
            train_args(fx.checkpoint("r-finished", b"a finished run's checkpoint")),
            {"absent": fx.path("r-finished/.lock"), "text": "already holds a run"},
        ),
        (
            "refuse",
            "19.8 a bad --profile with --export writes nothing",
            ["--profile", fx.profile("bad8.json", _set(["latency_ms", 0, 0], "x")), "--export", fx.path("m8.onnx")],
            {"absent": fx.path("m8.onnx")},
        ),
        # 9
        (
            "refuse",
            "19.9 escape sequence in a profile name",
            ["--profile", fx.this_cpu_profile("esc.json", _set(["name"], "cpu" + esc))],
            {},
        ),
        (
            "refuse",
            "19.9 escape sequence in a table's space name",
            ["--table", fx.table_with("esc-t.json", _set(["space", "name"], "cifar10" + esc))],
            {},
        ),
        (
            "refuse",
            "19.9 escape sequence in a bundle result name",
            ["profile", "import", fx.bundle("escb", edit_results=_set(["name"], "dev" + esc)), "-o", fx.path("e.json")],
            {"absent": fx.path("e.json")},
        ),
        # 10
        (
            "refuse",
            "19.10 --from-one-thread on a profile timed on another host",
            [
                "profile",
                "--from-one-thread",
                elsewhere_t1,
                "--threads",
                "2",
                "--name",
                "this-cpu",
                "--space",
                "cifar10",
                "-o",
                fx.path("scaled.json"),
            ],
            {"absent": fx.path("scaled.json")},
        ),
        # 11
        ("refuse", "19.11 --time-limit -1", ["--device", "jetson", "--time-limit", "-1"], {"text": "time limit"}),
        ("refuse", "19.11 --time-limit nan", ["--device", "jetson", "--time-limit", "nan"], {"text": "time limit"}),
        (
            "refuse",
            "19.11 --device jetson with another device's profile",
            ["--device", "jetson", "--table", "cifar10", "--profile", shipped_t1],
            {"text": "disagree"},
        ),
        (
            "refuse",
            "19.11 tensorrt export over an existing build script",
            [
                "export",
                "--space",
                "cifar10",
                "--arch",
                ARCH,
                "--untrained",
                "--format",
                "tensorrt",
                "-o",
                fx.path("trt2/x.engine"),
            ],
            {"text": "overwrite", "inputs": [build_script]},
        ),
    ]


def _pickled() -> bytes:
    """A torch zip whose pickle calls a global: weights_only loading must refuse it."""
    import torch

    buffer = io.BytesIO()
    torch.save({"config": {}, "net": Path("/")}, buffer)
    return buffer.getvalue()


def classify(result, kind: str, options: dict, before: dict[str, bytes]) -> str:
    """'clean', 'traceback', 'silent' (exit 0: accepted), 'damaged' (an input changed or a pipe was replaced),
    'escape' (a terminal escape from a file reached the output) or 'unclear' (exit 2 but not one clean line,
    or exit 1). A 'works' case must exit 0 (saying `text` where given) without damage."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    stderr = result.stderr.strip()
    if "Traceback" in result.output or "Traceback" in stderr:
        return "traceback"
    if any(Path(path).read_bytes() != content for path, content in before.items()):
        return "damaged"
    if options.get("fifo") and not Path(options["fifo"]).is_fifo():
        return "damaged"
    if "\x1b" in result.output or "\x1b" in stderr:
        return "escape"
    if kind == "works":
        said = "text" not in options or options["text"] in (result.output + stderr).replace("\n", "")
        return "clean" if result.exit_code == 0 and said else "unclear"
    if result.exit_code == 0:
        return "silent"
    if options.get("absent") and Path(options["absent"]).exists():
        return "unclear"
    if "text" in options and options["text"] not in stderr.replace("\n", ""):
        return "unclear"
    if result.exit_code != 2 or len(stderr.splitlines()) != 1 or result.stdout.strip():
        return "unclear"
    return "clean"


ENCODING_CASES = [  # 19.11: a terminal that cannot encode ± or → (run as a real process: the encoding is the point)
    ("PYTHONIOENCODING=ascii specialize devices", ["devices"], 0),
    (
        "PYTHONIOENCODING=ascii specialize --device jetson --max-flops 45M",
        ["--device", "jetson", "--max-flops", "45M"],
        0,
    ),
    ("PYTHONIOENCODING=ascii specialize --device 'jetsön'", ["--device", "jetsön"], 2),
]


def run_with_ascii_output(argv: list[str], expected: int) -> str:
    import subprocess

    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *argv],
        capture_output=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    if b"Traceback" in done.stderr:
        return "traceback"
    if done.returncode != expected:
        return "unclear"
    return "clean" if expected == 0 or len(done.stderr.strip().splitlines()) == 1 else "unclear"


def judge(runner: CliRunner, kind: str, argv: list[str], options: dict):
    """(verdict, result) of one case: its input files read before it runs and compared after."""
    inputs = {path: Path(path).read_bytes() for path in options.get("inputs", [])}
    result = run_case(runner, argv, options)
    return classify(result, kind, options, inputs), result


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
    counts = {"clean": 0, "traceback": 0, "silent": 0, "damaged": 0, "escape": 0, "unclear": 0}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPECIALIZE_CACHE"] = str(Path(tmp) / "cache")  # decoded synthetic images stay in the temporary dir
        fx = Fixtures(Path(tmp))
        all_cases = cases(fx)
        data = fx.data()
        raised = (0, "")  # the most any one case raised this process's peak memory, and which
        for kind, name, argv, options in all_cases:
            argv = [a.replace("{data}", data) for a in argv]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            verdict, result = judge(runner, kind, argv, options)
            raised = max(raised, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, name))
            counts[verdict] += 1
            if args.verbose or verdict != "clean":
                detail = repr(result.exception) if verdict == "traceback" else result.stderr.strip()[:300]
                print(f"{verdict:9s} {name}: exit {result.exit_code}: {detail}")
        for name, argv, expected in ENCODING_CASES:
            verdict = run_with_ascii_output(argv, expected)
            counts[verdict] += 1
            if args.verbose or verdict != "clean":
                print(f"{verdict:9s} {name}")
    total = sum(counts.values())
    print(f"bad inputs tried: {total}")
    print(f"clean (exit 2, one line, nothing written; or, where it must work, exit 0 saying so): {counts['clean']}")
    print(f"tracebacks: {counts['traceback']} (goal 0)")
    print(f"silent wrong answers (accepted): {counts['silent']} (goal 0)")
    print(f"inputs damaged (an input file changed, a pipe replaced): {counts['damaged']} (goal 0)")
    print(f"terminal escapes from a file printed: {counts['escape']} (goal 0)")
    print(f"other (exit 2 without one clean line, exit 1, or a file written): {counts['unclear']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory of the whole run: {peak:.0f} MB; the most one case raised it: {raised[0] / 1024:.0f} MB "
        f"({raised[1] or 'none'}) (goal: under 500 MB for any file under 1 MB)"
    )


if __name__ == "__main__":
    main()
