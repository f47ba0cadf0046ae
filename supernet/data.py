"""Image-folder data without torchvision: ROOT/train/<class>/* and ROOT/test/<class>/*, or a .tar.gz of it.

Images are decoded with Pillow into uint8 arrays [N, H, W, 3] and cached as .npy files under
~/.cache/specialize (keyed by a hash of the content), so a second run starts in seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from zlib import error as zlib_error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from specialize.errors import SpecializeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def clear_cache() -> int:
    """Remove every cached decoded dataset; returns the bytes freed."""
    root = cache_root() / "datasets"
    before = directory_bytes(root)
    shutil.rmtree(root, ignore_errors=True)
    left = directory_bytes(root)
    if left:
        raise SpecializeError(
            f"cannot empty the cache {root}: {left / 1e6:.1f} MB could not be removed "
            f"(freed {(before - left) / 1e6:.1f} MB)"
        )
    return before


def cache_root() -> Path:
    """Where decoded arrays are cached: $SPECIALIZE_CACHE, else ~/.cache/specialize."""
    return Path(os.environ.get("SPECIALIZE_CACHE", Path.home() / ".cache" / "specialize"))


@dataclass
class ImageDataset:
    classes: tuple[str, ...]
    train_images: np.ndarray  # uint8 [N, H, W, 3]
    train_labels: np.ndarray  # int64 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    notes: tuple[str, ...] = ()  # what the reader changed: grayscale converted, images resized
    source_size: int | None = None  # the side of the files' own images when all are one square size, else None

    def counts(self) -> dict:
        return {"train": int(len(self.train_labels)), "test": int(len(self.test_labels)), "classes": len(self.classes)}


MAX_IMAGE_FILE_BYTES = 64 * 2**20  # one image file; a bigger one is refused before it is read
MAX_IMAGE_PIXELS = 40_000_000  # one image (about 6300 x 6300); bigger is refused from its header, before decoding


def _checked_size(name: str, nbytes: int) -> None:
    if nbytes > MAX_IMAGE_FILE_BYTES:
        raise SpecializeError(
            f"image {name} is {nbytes:,} bytes, over the {MAX_IMAGE_FILE_BYTES:,}-byte limit for one image file"
        )


def _decode(data: bytes, name: str, size: int | None, notes: dict) -> np.ndarray:
    """RGB uint8 [H, W, 3]; other modes are converted and other sizes resized to `size` (counted in `notes`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError
        image.load()
    except Image.DecompressionBombError:
        raise SpecializeError(
            f"image {name} is too large to decode safely (over {min(MAX_IMAGE_PIXELS, 2 * Image.MAX_IMAGE_PIXELS):,} "
            "pixels)"
        ) from None
    except UnidentifiedImageError:
        raise SpecializeError(f"unreadable image {name}: not an image Pillow can identify") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SpecializeError(f"unreadable image {name}: {exc}") from None
    notes.setdefault(SOURCE_SIZES, set()).add(image.size)
    if image.mode != "RGB":
        notes.setdefault(f"converted from {image.mode} to RGB", 0)
        notes[f"converted from {image.mode} to RGB"] += 1
        image = image.convert("RGB")
    if size is not None and image.size != (size, size):
        key = f"resized to {size}x{size}"
        notes[key] = notes.get(key, 0) + 1
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


SOURCE_SIZES = "_source_sizes"  # _decode's record of the files' own sizes, kept apart from the notes' counts


def _notes_text(notes: dict, source: str) -> list[str]:
    return [f"{count} images of {source} {what}" for what, count in sorted(notes.items()) if what != SOURCE_SIZES]


def _source_size(notes: dict) -> int | None:
    sizes = notes.get(SOURCE_SIZES, set())
    return next(iter(sizes))[0] if len(sizes) == 1 and len(set(next(iter(sizes)))) == 1 else None


def _split_members(names: list[str]) -> dict[str, dict[str, list[str]]]:
    """Group image paths by split and class from their trailing '<split>/<class>/<file>'."""
    layout: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for name in names:
        parts = Path(name).parts
        if len(parts) >= 3 and parts[-3] in layout and name.lower().endswith(IMAGE_SUFFIXES):
            layout[parts[-3]].setdefault(parts[-2], []).append(name)
    return layout


def _check_layout(
    layout: dict[str, dict[str, list[str]]], source: str, class_dirs: dict[str, set[str]]
) -> tuple[str, ...]:
    for split in ("train", "test"):
        for cls in sorted(class_dirs.get(split, set()) - set(layout[split])):
            raise SpecializeError(f"class folder {split}/{cls} in {source} holds no images")
        if not layout[split]:
            raise SpecializeError(
                f"{source} has no images under {split}/<class>/ (expected ROOT/train/<class>/*.jpg and "
                "ROOT/test/<class>/*)"
            )
    train, test = set(layout["train"]), set(layout["test"])
    if train != test:
        raise SpecializeError(
            f"class sets differ between train and test in {source}: "
            f"only in train: {sorted(train - test)}, only in test: {sorted(test - train)}"
        )
    return tuple(sorted(train))


def _read_folder(root: Path, size: int | None) -> tuple[dict, dict]:
    names = [str(p) for p in root.rglob("*") if p.is_file()]
    class_dirs = {
        s: {d.name for d in p.iterdir() if d.is_dir()}
        for p in root.rglob("*")
        if p.is_dir() and (s := p.name) in ("train", "test")
    }
    layout = _split_members(names)
    classes = _check_layout(layout, str(root), class_dirs)
    notes: dict = {}
    arrays = {
        split: [
            (_decode(_read_image_file(Path(n)), n, size, notes), c)
            for c, cls in enumerate(classes)
            for n in sorted(layout[split][cls])
        ]
        for split in ("train", "test")
    }
    return _stack(arrays, size), {
        "classes": classes,
        "notes": _notes_text(notes, str(root)),
        "source_size": _source_size(notes),
    }


def _read_image_file(path: Path) -> bytes:
    _checked_size(str(path), path.stat().st_size)
    return path.read_bytes()


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> bytes:
    _checked_size(name, member.size)
    return tar.extractfile(member).read()


def _read_tar(path: Path, size: int | None) -> tuple[dict, dict]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            class_dirs: dict[str, set[str]] = {}
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if m.isdir() and len(parts) >= 2 and parts[-2] in ("train", "test"):
                    class_dirs.setdefault(parts[-2], set()).add(parts[-1])
            layout = _split_members(list(members))
            classes = _check_layout(layout, str(path), class_dirs)
            notes: dict = {}
            arrays = {
                split: [
                    (_decode(_read_member(tar, members[n], f"{path}:{n}"), f"{path}:{n}", size, notes), c)
                    for c, cls in enumerate(classes)
                    for n in sorted(layout[split][cls])
                ]
                for split in ("train", "test")
            }
    except (tarfile.TarError, EOFError, OSError, zlib_error) as exc:
        raise SpecializeError(f"cannot read archive {path}: {exc}") from None
    return _stack(arrays, size), {
        "classes": classes,
        "notes": _notes_text(notes, str(path)),
        "source_size": _source_size(notes),
    }


def _stack(arrays: dict, size: int | None) -> dict:
    out = {}
    for split, items in arrays.items():
        shapes = {img.shape for img, _ in items}
        if len(shapes) > 1:
            raise SpecializeError(
                f"images in {split} differ in size {sorted(shapes)[:3]}...; pass an image size to resize them"
            )
        out[f"{split}_images"] = np.stack([img for img, _ in items])
        out[f"{split}_labels"] = np.asarray([c for _, c in items], dtype=np.int64)
    return out


def _cache_key(path: Path, size: int | None) -> str:
    """Hash of the content: the archive's bytes, or every file's relative path, size and bytes. Images replaced
    with their mtimes preserved get a new key, so the cache never serves stale arrays."""
    digest = hashlib.blake2b(json.dumps(["v2", size]).encode(), digest_size=16)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    try:
        for file in files:
            digest.update(
                json.dumps([str(file.relative_to(path)) if path.is_dir() else "", file.stat().st_size]).encode()
            )
            with open(file, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    except OSError as exc:
        raise SpecializeError(f"cannot read data {path}: {exc.strerror or exc} ({exc.filename})") from None
    return digest.hexdigest()


ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(cache_dir: Path) -> tuple[dict, dict] | str | None:
    """(arrays, meta) of an intact cache entry; None when there is none; the reason, when the entry is damaged
    (a torn write, a truncated or edited file): it is then removed, so the caller rebuilds it."""
    meta_file = cache_dir / "meta.json"
    if not cache_dir.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        if "checksums" not in meta:
            raise ValueError("written by an older version, without checksums")
        sums = meta["checksums"]
        arrays = {}
        for key in ARRAY_KEYS:
            file = cache_dir / f"{key}.npy"
            if _file_digest(file) != sums[key]:
                raise ValueError(f"{file.name} does not match its checksum")
            arrays[key] = np.load(file, allow_pickle=False)
        classes, notes = list(meta["classes"]), list(meta["notes"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        shutil.rmtree(cache_dir, ignore_errors=True)
        return f"{type(exc).__name__}: {exc}"
    return arrays, {"classes": classes, "notes": notes, "source_size": meta.get("source_size")}


def _write_cache(cache_dir: Path, arrays: dict, meta: dict) -> str:
    """Write the entry into a temporary folder, then rename it into place (atomic: a reader sees a whole entry or
    none; two writers keep the first). A full disk costs the cache, not the run. Returns a note for the user."""
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
    try:
        for key in ARRAY_KEYS:
            np.save(tmp / f"{key}.npy", arrays[key])
        sums = {key: _file_digest(tmp / f"{key}.npy") for key in ARRAY_KEYS}
        (tmp / "meta.json").write_text(
            json.dumps(
                {
                    "classes": list(meta["classes"]),
                    "notes": list(meta["notes"]),
                    "source_size": meta.get("source_size"),
                    "checksums": sums,
                }
            )
        )
        try:
            os.rename(tmp, cache_dir)
        except OSError:  # another process cached the same content first: keep its entry
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return f"decoded images not cached ({exc.strerror or exc}); the next run decodes them again"
    return (
        f"decoded images cached in {cache_dir} ({directory_bytes(cache_dir) / 1e6:.0f} MB; the cache holds "
        f"{directory_bytes(cache_root()) / 1e6:.0f} MB in all; `specialize cache --clear` empties it)"
    )


def load_dataset(path: str | os.PathLike, image_size: int | None = None, cache: bool = True) -> ImageDataset:
    """Read an image folder or a .tar.gz of one; decoded arrays are cached by a hash of the content, each file
    checked against its checksum when read back (a damaged entry is rebuilt, and the notes say so)."""
    path = Path(path)
    if not path.exists():
        raise SpecializeError(f"data path {path} does not exist")
    if path.is_dir() and not any(path.iterdir()):
        raise SpecializeError(f"data folder {path} is empty")
    cache_dir = cache_root() / "datasets" / _cache_key(path, image_size)
    cached = _read_cache(cache_dir) if cache else None
    if isinstance(cached, tuple):
        arrays, meta = cached
    else:
        arrays, meta = (_read_folder if path.is_dir() else _read_tar)(path, image_size)
        notes = list(meta["notes"])
        if cache:
            written = _write_cache(cache_dir, arrays, meta)
            damaged = [f"the cached copy in {cache_dir} was damaged ({cached}); decoded again"] if cached else []
            notes = notes + damaged + [written]
        meta = dict(meta, notes=notes)
    if len(meta["classes"]) < 2:
        raise SpecializeError(
            f"{path} has {len(meta['classes'])} class folder ({', '.join(meta['classes'])}); "
            "a classifier needs at least 2 classes under train/ and test/"
        )
    return ImageDataset(
        classes=tuple(meta["classes"]),
        source=str(path),
        notes=tuple(meta.get("notes", ())),
        source_size=meta.get("source_size") if type(meta.get("source_size")) is int else None,
        **arrays,
    )


def balanced_split(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held_out) with `per_class` images of every class held out, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) <= per_class:
            raise SpecializeError(
                f"class {c} has {len(idx)} training images; need more than {per_class} to hold out a validation split"
            )
        held.append(rng.choice(idx, per_class, replace=False))
    held_out = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(labels)), held_out)
    return rest, held_out


def to_tensor(images: np.ndarray, resolution: int | None = None) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, R, R] in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    if resolution is not None and x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return x


def augment(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def calibration_indices(pool: np.ndarray, n_images: int, seed: int = 0) -> np.ndarray:
    """A fixed, sorted sample of `n_images` indices from `pool` for batch-norm recalibration."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, min(n_images, len(pool)), replace=False))


def resized_as_read(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] images resized to `size` x `size` the way the dataset reader resizes a file (Pillow's
    bilinear filter, rounded to uint8): images stored at their own size come out as training saw them."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BILINEAR)) for i in images])


def image_batches(images: np.ndarray, resolution: int, batch_size: int = 100) -> list[torch.Tensor]:
    return [to_tensor(images[i : i + batch_size], resolution) for i in range(0, len(images), batch_size)]


def calibration_batches(
    dataset: ImageDataset, resolution: int, n_images: int = 500, batch_size: int = 100, seed: int = 0
) -> list[torch.Tensor]:
    """A fixed sample of training images for batch-norm recalibration."""
    idx = calibration_indices(np.arange(len(dataset.train_labels)), n_images, seed)
    return image_batches(dataset.train_images[idx], resolution, batch_size)


def png_declaring(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares `width` x `height` pixels (one row of data is all it holds): a
    decompression bomb's header without the bomb, for tests of the size checks."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(2))) + chunk(b"IEND", b"")


def make_synthetic_folder(
    root: str | os.PathLike,
    classes: int = 3,
    train_per_class: int = 20,
    test_per_class: int = 6,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """A small learnable image folder for tests: each class has its own colour and stripe pattern."""
    from PIL import Image

    root, rng = Path(root), np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for c in range(classes):
        base = rng.integers(40, 215, 3)
        pattern = ((xx * (c + 1) + yy * c) // 4 % 2)[..., None] * 40
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.normal(0, 12, (size, size, 3))
                img = np.clip(base + pattern + noise, 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root
