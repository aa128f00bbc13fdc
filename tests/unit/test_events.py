import json
import multiprocessing

from ansible_collections.pycontainer.engine.plugins.module_utils.events import EventJournal


def test_event_has_dockers_shape(tmp_path):
    journal = EventJournal(str(tmp_path))
    event = journal.record("container", "die", "abc", {"exitCode": 3, "name": "web"})
    assert set(event) == {"Type", "Action", "Actor", "scope", "time", "timeNano"}
    assert event["Actor"] == {"ID": "abc", "Attributes": {"exitCode": "3", "name": "web"}}
    assert list(journal.read()) == [event]


def _writer(directory: str, n: int) -> None:
    journal = EventJournal(directory)
    for i in range(n):
        journal.record("image", "pull", f"img{i}", {"pad": "x" * 300})


def test_concurrent_writers_never_interleave_or_lose_lines(tmp_path):
    procs = [multiprocessing.Process(target=_writer, args=(str(tmp_path), 300)) for _i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == 1200
    assert all(json.loads(line)["Action"] == "pull" for line in lines)


def test_journal_is_bounded(tmp_path):
    journal = EventJournal(str(tmp_path), max_bytes=10_000)
    for i in range(500):
        journal.record("image", "tag", f"img{i}")
    sizes = [p.stat().st_size for p in tmp_path.glob("events*.jsonl")]
    assert len(sizes) == 2 and all(size <= 10_000 + 400 for size in sizes)
    events = list(journal.read())
    assert events[-1]["Actor"]["ID"] == "img499"
    assert [e["timeNano"] for e in events] == sorted(e["timeNano"] for e in events)


def test_time_window(tmp_path):
    journal = EventJournal(str(tmp_path))
    first = journal.record("image", "pull", "a")
    second = journal.record("image", "pull", "b")
    assert [e["Actor"]["ID"] for e in journal.read(since_ns=second["timeNano"])] == ["b"]
    assert [e["Actor"]["ID"] for e in journal.read(until_ns=first["timeNano"])] == ["a"]


def test_age_bound_hides_and_drops_old_events(tmp_path):
    import os
    import time

    journal = EventJournal(str(tmp_path), max_bytes=2_000, max_age_s=60)
    for i in range(40):  # enough to rotate once
        journal.record("image", "tag", f"img{i}")
    rotated = tmp_path / "events.1.jsonl"
    assert rotated.exists()
    # Age everything by two minutes: nothing is shown, and the next record drops the old generation.
    old = time.time() - 120
    for path in tmp_path.glob("events*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for event in lines:
            event["timeNano"] -= 120 * 1_000_000_000
        path.write_text("".join(json.dumps(e) + "\n" for e in lines))
        os.utime(path, (old, old))
    assert list(journal.read()) == []
    fresh = journal.record("image", "tag", "fresh")
    assert not rotated.exists()
    assert list(journal.read()) == [fresh]
