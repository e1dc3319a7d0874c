"""Reading and writing the ``promptlimits/model@1``, ``dataset@1`` and prompt formats.

Reading validates everything and raises :class:`InputError` with a one-line message that
names the file, the field and the problem. Numbers stay exact (see ``numbers.py``).
Binary weights come from ``.safetensors`` or ``.npz`` files (never pickle) referenced by
the JSON header's ``"weights"`` key; their floats are taken as the exact rationals they
denote and the model is marked ``from_floats``. Writing produces canonical JSON: sorted
keys, every number an exact string, so that equal objects have equal bytes and sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Optional

from promptlimits.constructions.errors import InputError
from promptlimits.constructions.numbers import JsonDecimal, NonFiniteLiteral, format_exact, is_binary64, parse_exact
from promptlimits.constructions.spec import Dataset, Example, Head, Layer, Matrix, Model, Vector, check_compatible
from promptlimits.constructions.surd import format_scale, parse_scale

MODEL_FORMAT = "promptlimits/model@1"
DATASET_FORMAT = "promptlimits/dataset@1"
PROMPT_FORMAT = "promptlimits/prompt@1"

#: Largest JSON file read (bytes) and largest number of entries in one matrix.
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_MATRIX_ENTRIES = 64 * 1024 * 1024

_HEAD_KEYS = ("W_q", "W_k", "W_v", "W_o")
_HEAD_BIASES = ("b_q", "b_k", "b_v")
_LAYER_MATRICES = ("W1", "W2")
_LAYER_VECTORS = ("b1", "b2")
_LAYER_OPTIONAL_VECTORS = ("ln1_gain", "ln1_bias", "ln2_gain", "ln2_bias", "b_o")


# ----------------------------------------------------------------------------- reading JSON


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file keeping every number literal verbatim; errors name the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as err:
        raise InputError(f"{p}: cannot read {what}: {err.strerror or err}") from None
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a {what} file")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{p}: {size} bytes exceeds the {MAX_FILE_BYTES}-byte limit on {what} files")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{p}: cannot read {what}: {err}") from None
    return parse_json_text(text, f"{p}")


def parse_json_text(text: str, where: str) -> Any:
    """Parse JSON text with exact number literals; errors are one line naming ``where``."""
    try:
        return json.loads(
            text,
            parse_float=JsonDecimal,
            parse_int=JsonDecimal,
            parse_constant=NonFiniteLiteral,
        )
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object")
    return value


def _field(obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise InputError(f"{where}: missing key {key!r}")
    return obj[key]


def _nonempty_list(obj: dict, key: str, where: str, what: str) -> list:
    value = _field(obj, key, where)
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}.{key}: expected a non-empty list of {what}")
    return value


def _int(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(f"{where}: expected an integer")
    try:
        number = parse_exact(value, where)
    except InputError:
        raise InputError(f"{where}: expected an integer") from None
    if number.denominator != 1 or number < minimum:
        raise InputError(f"{where}: expected an integer >= {minimum}, got {format_exact(number)}")
    return int(number)


def _vector(value: Any, where: str) -> Vector:
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list of numbers")
    if not value:
        raise InputError(f"{where}: empty list")
    if len(value) > MAX_MATRIX_ENTRIES:
        raise InputError(f"{where}: more than {MAX_MATRIX_ENTRIES} entries")
    return tuple(parse_exact(x, f"{where}[{i}]") for i, x in enumerate(value))


def _matrix(value: Any, where: str) -> Matrix:
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a matrix (a list of rows)")
    if not value:
        raise InputError(f"{where}: empty matrix")
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, list):
            raise InputError(f"{where}[{i}]: expected a row (a list of numbers)")
        if rows and len(row) != len(rows[0]):
            raise InputError(f"{where}: ragged matrix, row {i} has {len(row)} entries, row 0 has {len(rows[0])}")
        rows.append(_vector(row, f"{where}[{i}]"))
    if len(rows) * len(rows[0]) > MAX_MATRIX_ENTRIES:
        raise InputError(f"{where}: more than {MAX_MATRIX_ENTRIES} entries")
    return tuple(rows)


def _check_format(obj: dict, expected: str, where: str) -> None:
    tag = _field(obj, "format", where)
    if tag != expected:
        raise InputError(f"{where}.format: expected {expected!r}, got {tag!r}")


# ----------------------------------------------------------------------------- binary weights


def _load_arrays(header_path: Path, ref: Any, where: str) -> dict[str, Any]:
    """Arrays of the ``weights`` file (.safetensors or .npz, never pickle), by key."""
    import numpy as np

    if not isinstance(ref, str) or isinstance(ref, JsonDecimal) or not ref:
        raise InputError(f"{where}: expected a file name (a JSON string)")
    path = (header_path.parent / ref) if not os.path.isabs(ref) else Path(ref)
    if not path.is_file():
        raise InputError(f"{where}: weights file {str(path)!r} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
        elif path.suffix == ".npz":
            with np.load(str(path), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        else:
            raise InputError(f"{where}: weights must be .safetensors or .npz, got {path.suffix or 'no suffix'!r}")
    except InputError:
        raise
    except Exception as err:  # corrupt archive, pickled object array, bad header
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot read weights: {first}") from None
    for key, arr in arrays.items():
        if arr.dtype.kind not in "fiu":
            raise InputError(f"{path}:{key}: dtype {arr.dtype} is not numeric")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError(f"{path}:{key}: contains NaN or Inf")
    return arrays


def _array_to_exact(arr: Any, ndim: int, where: str) -> Matrix | Vector:
    if arr.ndim != ndim:
        raise InputError(f"{where}: expected a {ndim}-dimensional array, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise InputError(f"{where}: empty array")
    if arr.dtype.kind == "f":
        convert: Callable[[Any], Fraction] = lambda x: Fraction(float(x))
    else:
        convert = lambda x: Fraction(int(x))
    if ndim == 1:
        return tuple(convert(x) for x in arr.tolist())
    return tuple(tuple(convert(x) for x in row) for row in arr.tolist())


# ----------------------------------------------------------------------------- model


def model_from_json(obj: Any, where: str, base: Optional[Path] = None) -> Model:
    """Build a :class:`Model` from a parsed ``model@1`` object (``base``: for the weights file)."""
    obj = _obj(obj, where)
    _check_format(obj, MODEL_FORMAT, where)
    d = _int(_field(obj, "d", where), f"{where}.d")
    arrays: dict[str, Any] = {}
    if obj.get("weights") is not None:
        arrays = _load_arrays(base or Path("."), obj["weights"], f"{where}.weights")
    used: set[str] = set()

    def entry(o: dict, key: str, w: str, prefix: str, ndim: int, optional: bool = False) -> Any:
        """A matrix (ndim 2) or vector (ndim 1) from the JSON object, else from the weights file."""
        if key in o and o[key] is not None:
            return _matrix(o[key], f"{w}.{key}") if ndim == 2 else _vector(o[key], f"{w}.{key}")
        if f"{prefix}{key}" in arrays:
            used.add(f"{prefix}{key}")
            return _array_to_exact(arrays[f"{prefix}{key}"], ndim, f"{w}.{key}")
        if optional:
            return None
        raise InputError(f"{w}: missing key {key!r}")

    def matrix(o: dict, key: str, w: str, prefix: str) -> Matrix:
        return entry(o, key, w, prefix, 2)

    def vector(o: dict, key: str, w: str, prefix: str, optional: bool = False) -> Optional[Vector]:
        return entry(o, key, w, prefix, 1, optional)

    attention = _field(obj, "attention", where)
    if attention not in ("bidirectional", "causal"):
        raise InputError(f"{where}.attention: expected 'bidirectional' or 'causal', got {attention!r}")
    score_scale = parse_scale(obj.get("score_scale", "1"), f"{where}.score_scale")
    positional = None
    if obj.get("positional") is not None or "positional" in arrays:
        positional = matrix(obj, "positional", where, "")
    layers_raw = _nonempty_list(obj, "layers", where, "layers")
    layers = []
    for i, raw in enumerate(layers_raw):
        lw = f"{where}.layers[{i}]"
        lo = _obj(raw, lw)
        heads_raw = _nonempty_list(lo, "heads", lw, "heads")
        heads = []
        for h, hraw in enumerate(heads_raw):
            hw = f"{lw}.heads[{h}]"
            ho = _obj(hraw, hw)
            hp = f"layers.{i}.heads.{h}."
            heads.append(Head(*(matrix(ho, k, hw, hp) for k in _HEAD_KEYS),
                              **{k: vector(ho, k, hw, hp, optional=True) for k in _HEAD_BIASES}))
        activation = lo.get("activation", "relu")
        norm = lo.get("norm")
        ln_eps = parse_exact(lo.get("ln_eps", "1/1000000000000"), f"{lw}.ln_eps")
        prefix = f"layers.{i}."
        layers.append(
            Layer(
                heads=tuple(heads),
                W1=matrix(lo, "W1", lw, prefix),
                b1=vector(lo, "b1", lw, prefix),
                W2=matrix(lo, "W2", lw, prefix),
                b2=vector(lo, "b2", lw, prefix),
                activation=activation,
                norm=norm,
                ln_eps=ln_eps,
                **{k: vector(lo, k, lw, prefix, optional=True) for k in _LAYER_OPTIONAL_VECTORS},
            )
        )
    unused = sorted(set(arrays) - used)
    if unused:
        raise InputError(f"{where}.weights: array {unused[0]!r} is not a weight of this model "
                         f"(expected keys like 'layers.0.heads.0.W_q', 'layers.0.W1', 'positional')")
    return _with_where(
        lambda: Model(
            d=d,
            layers=tuple(layers),
            attention=attention,
            score_scale=score_scale,
            positional=positional,
            from_floats=bool(arrays),
        ),
        where,
    )


def _with_where(build: Callable[[], Any], where: str) -> Any:
    """Run a spec constructor, prefixing its InputError with the file name."""
    try:
        return build()
    except InputError as err:
        message = str(err)
        for stem in ("model", "dataset"):
            if message.startswith(stem):
                message = message[len(stem):].lstrip(".:")
                break
        raise InputError(f"{where}.{message}" if not message.startswith(" ") else f"{where}:{message}") from None


def load_model(path: str | os.PathLike) -> Model:
    """Read and validate a model file (``model@1`` JSON, optionally with binary weights)."""
    p = Path(path)
    return model_from_json(read_json(p, "model"), str(p), base=p)


def model_to_json(model: Model) -> dict:
    """The canonical ``model@1`` object of a model (every number an exact string)."""

    def mat(m: Matrix) -> list:
        return [[format_exact(x) for x in row] for row in m]

    def vec(v: Vector) -> list:
        return [format_exact(x) for x in v]

    def head(h: Head) -> dict:
        out = {k: mat(getattr(h, k)) for k in _HEAD_KEYS}
        out.update({k: vec(getattr(h, k)) for k in _HEAD_BIASES if getattr(h, k) is not None})
        return out

    layers = []
    for layer in model.layers:
        entry: dict[str, Any] = {
            "heads": [head(h) for h in layer.heads],
            "W1": mat(layer.W1),
            "b1": vec(layer.b1),
            "W2": mat(layer.W2),
            "b2": vec(layer.b2),
            "activation": layer.activation,
            "norm": layer.norm,
        }
        if layer.norm is not None:
            entry["ln_eps"] = format_exact(layer.ln_eps)
        for k in _LAYER_OPTIONAL_VECTORS:
            if getattr(layer, k) is not None and (layer.norm is not None or k == "b_o"):
                entry[k] = vec(getattr(layer, k))
        layers.append(entry)
    return {
        "format": MODEL_FORMAT,
        "d": model.d,
        "attention": model.attention,
        "score_scale": format_scale(model.score_scale),
        "positional": None if model.positional is None else mat(model.positional),
        "layers": layers,
    }


def _binary64(values: Any, where: str) -> Any:
    """A float64 array of a vector or matrix whose entries are binary64 numbers, else InputError."""
    import numpy as np

    rows = values if isinstance(values[0], tuple) else (values,)
    if not all(is_binary64(x) for row in rows for x in row):
        raise InputError(f"{where}: an entry is not a binary64 number; write the model as JSON instead")
    arr = np.array([[float(x) for x in row] for row in rows], dtype=np.float64)
    return arr if isinstance(values[0], tuple) else arr[0]


def model_files(model: Model, json_name: str) -> dict[str, bytes]:
    """The model as a small ``model@1`` JSON header plus a .safetensors file beside it
    (``<stem>.safetensors``) holding every matrix and vector as float64, by file name.

    Lossless: every entry must be a binary64 number (as in a model read from floats), so
    loading the pair gives back an equal model; otherwise InputError."""
    from safetensors.numpy import save

    path = Path(json_name)
    weights = path.with_suffix(".safetensors")
    arrays: dict[str, Any] = {}

    def move(obj: Any, keys: tuple[str, ...], prefix: str) -> None:
        for k in keys:
            value = getattr(obj, k)
            if value is not None:
                arrays[prefix + k] = _binary64(value, prefix + k)

    layers = []
    for i, layer in enumerate(model.layers):
        for h, head in enumerate(layer.heads):
            move(head, _HEAD_KEYS + _HEAD_BIASES, f"layers.{i}.heads.{h}.")
        move(layer, _LAYER_MATRICES + _LAYER_VECTORS + _LAYER_OPTIONAL_VECTORS, f"layers.{i}.")
        entry: dict[str, Any] = {"heads": [{} for _ in layer.heads], "activation": layer.activation,
                                 "norm": layer.norm}
        if layer.norm is not None:
            entry["ln_eps"] = format_exact(layer.ln_eps)
        layers.append(entry)
    if model.positional is not None:
        arrays["positional"] = _binary64(model.positional, "positional")
    header = {"format": MODEL_FORMAT, "d": model.d, "attention": model.attention,
              "score_scale": format_scale(model.score_scale), "positional": None, "layers": layers,
              "weights": weights.name}
    return {str(path): (json.dumps(header, indent=1, sort_keys=True) + "\n").encode("utf-8"),
            str(weights): save(arrays)}


# ----------------------------------------------------------------------------- dataset


def dataset_from_json(obj: Any, where: str) -> Dataset:
    """Build a :class:`Dataset` from a parsed ``dataset@1`` object."""
    obj = _obj(obj, where)
    _check_format(obj, DATASET_FORMAT, where)
    d = _int(_field(obj, "d", where), f"{where}.d")
    raw = _nonempty_list(obj, "examples", where, "examples")
    examples = []
    for i, ex in enumerate(raw):
        w = f"{where}.examples[{i}]"
        eo = _obj(ex, w)
        inputs = _field(eo, "input", w)
        targets = _field(eo, "target", w)
        if not isinstance(inputs, list) or not inputs:
            raise InputError(f"{w}.input: expected a non-empty list of tokens")
        if not isinstance(targets, list):
            raise InputError(f"{w}.target: expected a list with one entry (token or null) per position")
        if len(targets) != len(inputs):
            raise InputError(f"{w}.target: {len(targets)} entries for {len(inputs)} input positions")
        tokens = tuple(_vector(t, f"{w}.input[{j}]") for j, t in enumerate(inputs))
        ys = tuple(None if t is None else _vector(t, f"{w}.target[{j}]") for j, t in enumerate(targets))
        examples.append(Example(input=tokens, target=ys))
    return _with_where(lambda: Dataset(d=d, examples=tuple(examples)), where)


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read and validate a ``dataset@1`` JSON file."""
    return dataset_from_json(read_json(path, "dataset"), str(path))


def load_model_and_dataset(model_path: str | os.PathLike, dataset_path: str | os.PathLike) -> tuple[Model, Dataset]:
    """Read a model and a dataset and check that they fit together (same d, lengths)."""
    model = load_model(model_path)
    dataset = load_dataset(dataset_path)
    check_compatible(model, dataset, where=str(dataset_path))
    return model, dataset


def dataset_to_json(dataset: Dataset) -> dict:
    """The canonical ``dataset@1`` object of a dataset."""
    return {
        "format": DATASET_FORMAT,
        "d": dataset.d,
        "examples": [
            {
                "input": [[format_exact(x) for x in tok] for tok in ex.input],
                "target": [None if y is None else [format_exact(x) for x in y] for y in ex.target],
            }
            for ex in dataset.examples
        ],
    }


# ----------------------------------------------------------------------------- prompt


def prompt_from_json(obj: Any, where: str) -> tuple[Vector, ...]:
    """A prompt: a list of tokens, or an object with ``"prompt"`` (a ``prompt@1`` file)."""
    if isinstance(obj, dict):
        if "format" in obj and obj["format"] != PROMPT_FORMAT:
            raise InputError(f"{where}.format: expected {PROMPT_FORMAT!r}, got {obj['format']!r}")
        obj = _field(obj, "prompt", where)
        where = f"{where}.prompt"
    if not isinstance(obj, list):
        raise InputError(f"{where}: expected a list of prompt tokens")
    return tuple(_vector(t, f"{where}[{j}]") for j, t in enumerate(obj))


def load_prompt(path: str | os.PathLike) -> tuple[Vector, ...]:
    """Read a prompt file (list of tokens, or ``{"format": "promptlimits/prompt@1", "prompt": [...]}``)."""
    return prompt_from_json(read_json(path, "prompt"), str(path))


def prompt_to_json(prompt: tuple[Vector, ...], d: int) -> dict:
    """The canonical ``prompt@1`` object."""
    return {"format": PROMPT_FORMAT, "d": d, "prompt": [[format_exact(x) for x in t] for t in prompt]}


# ----------------------------------------------------------------------------- canonical form


def canonical_bytes(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha256_of(obj: Any) -> str:
    """Hex sha256 of the canonical JSON bytes of ``obj``."""
    return hashlib.sha256(canonical_bytes(obj)).hexdigest()
