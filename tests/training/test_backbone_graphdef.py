"""The GraphDef constants reader: a graph written with the same schema reads back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from customlabels.errors import ConfigError
from customlabels.training.backbone_graphdef import _graphdef_class, read_float_constants


def _graph(path: Path) -> Path:
    graph = _graphdef_class()()
    content = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    node = graph.node.add(name="A/weights", op="Const")
    t = node.attr["value"].tensor
    t.dtype, t.tensor_content = 1, content.astype("<f4").tobytes()
    t.tensor_shape.dim.add(size=1), t.tensor_shape.dim.add(size=2), t.tensor_shape.dim.add(size=3)
    node = graph.node.add(name="A/eps", op="Const")  # a scalar given as one float_val
    node.attr["value"].tensor.dtype = 1
    node.attr["value"].tensor.float_val.append(0.001)
    node = graph.node.add(name="A/fill", op="Const")  # one float_val broadcast to its shape
    t = node.attr["value"].tensor
    t.dtype = 1
    t.tensor_shape.dim.add(size=4)
    t.float_val.append(2.5)
    node = graph.node.add(name="A/ints", op="Const")  # DT_INT32: not a float constant
    node.attr["value"].tensor.dtype = 3
    graph.node.add(name="A/conv", op="Conv2D")
    graph.node.add(name="B/weights", op="Const").attr["value"].tensor.dtype = 1
    path.write_bytes(graph.SerializeToString())
    return path


def test_reads_float_constants_by_name_and_prefix(tmp_path: Path) -> None:
    consts = read_float_constants(_graph(tmp_path / "g.pb"), ["A/"])
    assert sorted(consts) == ["A/eps", "A/fill", "A/weights"]
    np.testing.assert_array_equal(consts["A/weights"], np.arange(6).reshape(1, 2, 3))
    assert consts["A/eps"].shape == () and consts["A/eps"] == np.float32(0.001)
    np.testing.assert_array_equal(consts["A/fill"], [2.5] * 4)
    assert all(v.dtype == np.float32 for v in consts.values())


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), (b"\xff\xff\xff\xff", "expected a TensorFlow GraphDef")],
)
def test_unreadable_graph_is_a_config_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "g.pb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        read_float_constants(path, ["A/"])
