"""core.boxes: each conversion and its inverse, as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from customlabels.core.boxes import (
    as_boxes,
    box_area,
    clip_xyxy,
    ltwh_norm_to_xyxy,
    ltwh_to_xyxy,
    xywh_norm_to_xyxy,
    xyxy_to_ltwh,
    xyxy_to_ltwh_norm,
    xyxy_to_xywh_norm,
)

coords = st.floats(0, 5000, allow_nan=False, allow_infinity=False)
sizes = st.tuples(st.integers(1, 5000), st.integers(1, 5000))


@st.composite
def xyxy_boxes(draw: st.DrawFn) -> np.ndarray:
    raw = draw(arrays(np.float64, st.tuples(st.integers(0, 20), st.just(4)), elements=coords))
    x1 = np.minimum(raw[:, 0], raw[:, 2])
    x2 = np.maximum(raw[:, 0], raw[:, 2])
    y1 = np.minimum(raw[:, 1], raw[:, 3])
    y2 = np.maximum(raw[:, 1], raw[:, 3])
    return np.stack([x1, y1, x2, y2], axis=1).reshape(-1, 4)


@settings(max_examples=200)
@given(b=xyxy_boxes())
def test_ltwh_round_trip(b: np.ndarray) -> None:
    np.testing.assert_allclose(ltwh_to_xyxy(xyxy_to_ltwh(b)), b, atol=1e-9)
    assert (xyxy_to_ltwh(b)[:, 2:] >= 0).all()


@settings(max_examples=200)
@given(b=xyxy_boxes(), size=sizes)
def test_normalized_round_trips(b: np.ndarray, size: tuple[int, int]) -> None:
    np.testing.assert_allclose(ltwh_norm_to_xyxy(xyxy_to_ltwh_norm(b, size), size), b, atol=1e-7)
    np.testing.assert_allclose(xywh_norm_to_xyxy(xyxy_to_xywh_norm(b, size), size), b, atol=1e-7)


@settings(max_examples=200)
@given(b=xyxy_boxes(), size=sizes)
def test_clip_stays_in_frame_and_is_idempotent(b: np.ndarray, size: tuple[int, int]) -> None:
    c = clip_xyxy(b, size)
    w, h = size
    assert (c[:, 0::2] >= 0).all() and (c[:, 0::2] <= w).all()
    assert (c[:, 1::2] >= 0).all() and (c[:, 1::2] <= h).all()
    np.testing.assert_array_equal(clip_xyxy(c, size), c)
    assert (box_area(c) <= box_area(b) + 1e-6).all()


@pytest.mark.parametrize(
    ("box", "area"),
    [([0, 0, 10, 5], 50.0), ([5, 5, 5, 9], 0.0), ([10, 10, 0, 0], 0.0), ([1.5, 0, 2.5, 2], 2.0)],
)
def test_box_area(box: list[float], area: float) -> None:
    assert box_area([box]).tolist() == [area]


def test_known_values() -> None:
    np.testing.assert_array_equal(ltwh_to_xyxy([[10, 20, 30, 40]]), [[10, 20, 40, 60]])
    np.testing.assert_allclose(
        xyxy_to_xywh_norm([[10, 20, 40, 60]], (100, 200)), [[0.25, 0.2, 0.3, 0.2]]
    )
    np.testing.assert_allclose(
        xyxy_to_ltwh_norm([[10, 20, 40, 60]], (100, 200)), [[0.1, 0.1, 0.3, 0.2]]
    )


@pytest.mark.parametrize(
    ("value", "shape", "error"),
    [
        ([], (0, 4), None),
        ([[1, 2, 3, 4]], (1, 4), None),
        ([1, 2, 3, 4], None, ValueError),
        ([[1, 2, 3]], None, ValueError),
    ],
)
def test_as_boxes_shapes(value: list, shape: tuple[int, int] | None, error: type | None) -> None:  # type: ignore[type-arg]
    if error:
        with pytest.raises(error, match="expected boxes of shape"):
            as_boxes(value)
    else:
        assert as_boxes(value).shape == shape and as_boxes(value).dtype == np.float64


@pytest.mark.parametrize("size", [(0, 10), (10, -1)])
def test_bad_sizes_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="positive image size"):
        xyxy_to_xywh_norm([[0, 0, 1, 1]], size)
