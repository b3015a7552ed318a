from __future__ import annotations

import pytest

from customlabels.errors import InvalidParameterError
from customlabels.pipeline.job import ImageMessage, Job, JobStatus
from customlabels.pipeline.keys import error_key, is_input, normalize_prefix, result_key


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        ("test_images/a.jpg", "test_images/", True),
        ("test_images/a b/ü%20c.jpg", "test_images/", True),  # spaces, unicode, literal %20
        ("test_images/x/y/z.png", "test_images/", True),  # nested prefixes
        ("test_images/notes.txt", "test_images/", True),  # not an image: gets an error JSON
        ("test_images/a.jpg.json", "test_images/", False),  # our result
        ("test_images/a.jpg.error.json", "test_images/", False),  # our error
        ("test_images/.tmp-abc.part", "test_images/", False),  # a temporary file
        ("test_images/.hidden/a.jpg", "test_images/", False),
        ("test_imagesX/a.jpg", "test_images/", False),  # outside the prefix
        ("other/a.jpg", "test_images/", False),
        ("test_images/", "test_images/", False),  # folder marker
        ("a.jpg", "", True),
        (".customlabels-pipeline/queue.sqlite3", "", False),  # pipeline state
    ],
)
def test_is_input(key: str, prefix: str, expected: bool) -> None:
    assert is_input(key, prefix) is expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("test_images", "test_images/"), ("/a/b/", "a/b/"), ("", ""), ("/", "")]
)
def test_normalize_prefix(raw: str, expected: str) -> None:
    assert normalize_prefix(raw) == expected


def test_outputs_are_never_inputs() -> None:
    key = "test_images/a.jpg"
    assert result_key(key) == "test_images/a.jpg.json"
    assert error_key(key) == "test_images/a.jpg.error.json"
    assert not is_input(result_key(key), "test_images/")
    assert not is_input(error_key(key), "test_images/")
    assert not is_input(result_key(result_key(key)), "test_images/")


def test_job_round_trip() -> None:
    job = Job(
        key="test_images/ü b.jpg",
        id=7,
        status=JobStatus.IN_PROGRESS,
        attempts=2,
        enqueued_at=1.5,
        not_before=2.5,
        lease_until=9.0,
        lease_token="t",
        worker="host:1",
        error={"__type": "InternalServerError", "message": "boom"},
    )
    data = job.to_dict()
    assert data["status"] == "IN_PROGRESS"
    assert Job.from_dict(data) == job


@pytest.mark.parametrize(
    "data", [{}, {"key": ""}, {"key": "a", "status": "LOST"}, {"key": "a", "attempts": "x"}]
)
def test_job_from_bad_dict(data: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError, match="job: not a valid job record"):
        Job.from_dict(data)


def test_image_message_round_trip_and_refusals() -> None:
    msg = ImageMessage("photos", "test_images/ü b.jpg", "abc")
    assert ImageMessage.from_dict(msg.to_dict()) == msg
    for bad in ({"key": "a"}, {"bucket": "b", "key": ""}, {"bucket": 1, "key": "a"}):
        with pytest.raises(InvalidParameterError, match="not a valid image message"):
            ImageMessage.from_dict(bad)
