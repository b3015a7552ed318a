"""Float constants of a frozen TensorFlow graph (``GraphDef`` protobuf), read by name without
TensorFlow.

The wire format is decoded by the ``protobuf`` package against a minimal schema declared here:
the subset of TensorFlow's ``graph.proto``, ``node_def.proto``, ``attr_value.proto``,
``tensor.proto`` and ``tensor_shape.proto`` (same field numbers) that a frozen graph's ``Const``
nodes need. Fields the schema does not declare are skipped by protobuf as unknown fields. We
declare the schema rather than depend on a package that ships TensorFlow's compiled protos:
TensorFlow itself (hundreds of MB) is what this avoids, and TensorBoard's copies pull in a web
server; nine fields are a smaller, checkable surface than either. Equivalent ``.proto``::

    message Dim { int64 size = 1; }
    message TensorShapeProto { repeated Dim dim = 2; }
    message TensorProto { int32 dtype = 1; TensorShapeProto tensor_shape = 2;
                          bytes tensor_content = 4; repeated float float_val = 5; }
    message AttrValue { TensorProto tensor = 8; }
    message NodeDef { string name = 1; string op = 2; map<string, AttrValue> attr = 5; }
    message GraphDef { repeated NodeDef node = 1; }
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from customlabels.errors import ConfigError

__all__ = ["read_float_constants"]

_DT_FLOAT = 1  # TensorFlow's DataType enum: DT_FLOAT
_F = descriptor_pb2.FieldDescriptorProto
# message -> [(field, number, type, repeated, message type)]; a map entry after its message
_SCHEMA: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "Dim": [("size", 1, _F.TYPE_INT64, False, None)],
    "TensorShapeProto": [("dim", 2, _F.TYPE_MESSAGE, True, "Dim")],
    "TensorProto": [
        ("dtype", 1, _F.TYPE_INT32, False, None),
        ("tensor_shape", 2, _F.TYPE_MESSAGE, False, "TensorShapeProto"),
        ("tensor_content", 4, _F.TYPE_BYTES, False, None),
        ("float_val", 5, _F.TYPE_FLOAT, True, None),
    ],
    "AttrValue": [("tensor", 8, _F.TYPE_MESSAGE, False, "TensorProto")],
    "NodeDef": [
        ("name", 1, _F.TYPE_STRING, False, None),
        ("op", 2, _F.TYPE_STRING, False, None),
        ("attr", 5, _F.TYPE_MESSAGE, True, "NodeDef.AttrEntry"),
    ],
    "NodeDef.AttrEntry": [
        ("key", 1, _F.TYPE_STRING, False, None),
        ("value", 2, _F.TYPE_MESSAGE, False, "AttrValue"),
    ],
    "GraphDef": [("node", 1, _F.TYPE_MESSAGE, True, "NodeDef")],
}
_PACKAGE = "customlabels_tf_subset"


def _graphdef_class() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto3"
    )
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for name, fields in _SCHEMA.items():
        outer, _, inner = name.partition(".")
        if inner:  # a map entry, nested in its message as protoc generates it
            msg = messages[outer].nested_type.add(name=inner)
            msg.options.map_entry = True
        else:
            msg = messages[name] = file.message_type.add(name=name)
        for field, number, kind, repeated, type_name in fields:
            label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            f = msg.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                f.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.GraphDef"))


def read_float_constants(path: Path, prefixes: Iterable[str]) -> dict[str, np.ndarray]:
    """The float32 ``Const`` nodes of the frozen graph at ``path`` whose names start with one of
    ``prefixes``, by node name, in TensorFlow's layout (conv weights ``(kh, kw, in, out)``,
    depthwise ``(kh, kw, in, multiplier)``).

    Raises:
        ConfigError: the file is missing or is not a GraphDef.
    """
    prefixes = tuple(prefixes)
    graph = _graphdef_class()()
    try:
        graph.ParseFromString(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the frozen graph ({exc})") from None
    except DecodeError as exc:
        raise ConfigError(f"{path}: expected a TensorFlow GraphDef, got {exc}") from None
    out: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op != "Const" or not node.name.startswith(prefixes):
            continue
        tensor = node.attr["value"].tensor
        if tensor.dtype != _DT_FLOAT:
            continue
        shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype="<f4")
        else:  # small constants: repeated float_val, one value broadcast when fewer are given
            values = np.asarray(tensor.float_val, dtype=np.float32)
            if values.size == 1:
                values = np.full(int(np.prod(shape)), values[0], dtype=np.float32)
        out[node.name] = values.astype(np.float32).reshape(shape)
    return out
