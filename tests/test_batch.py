"""facezoo batch: every input is accounted for, bad files are rows, the local and Ray engines
write the same bytes, and a run killed part-way (driver or worker) resumes to the same file.

The models are tiny and untrained (saved to a temp folder, loaded by each worker from there);
the photos are the shared bundle's, plus a corrupt JPEG, a text file, a missing path and a
blank picture with no face.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from PIL import Image

import facezoo
from facezoo._batch import inputs

DATA = Path(os.environ.get("FACEZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PHOTOS = DATA / "photos"
pytestmark = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"shared photos not found at {PHOTOS}")
HAS_RAY = importlib.util.find_spec("ray") is not None
# The settings of every run that is compared with the reference: small units and parts, so a
# run can be killed between parts.
SMALL = {"batch_size": 1, "chunk_size": 2}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two tiny untrained models and a manifest of the 17 photos plus four bad or faceless files."""
    root = tmp_path_factory.mktemp("batch")
    for task in ("age-gender", "expression"):
        facezoo.load(task, "test_resnet", pretrained=False).save_pretrained(root / task)
    (root / "corrupt.jpg").write_bytes((PHOTOS / "obama_official_portrait_2012.jpg").read_bytes()[:600] + b"\0" * 64)
    (root / "notes.txt").write_text("not a picture\n")
    Image.new("RGB", (200, 160), (128, 128, 128)).save(root / "blank.png")
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path"])
        writer.writerows([[str(p)] for p in sorted(PHOTOS.glob("*.jpg"))] + [["corrupt.jpg"], ["notes.txt"], ["missing.jpg"], ["blank.png"]])
    return root


def models(folder: Path) -> str:
    return f"{folder / 'age-gender'},{folder / 'expression'}"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(folder) -> Path:
    """The uninterrupted local run every other run is compared with."""
    out = folder / "reference.jsonl"
    facezoo.batch(models(folder), folder / "manifest.csv", out, workers=2, progress=False, **SMALL)
    return out


def test_every_image_is_accounted_for_and_bad_files_are_error_rows(folder, reference):
    rows = read_jsonl(reference)
    by_image: dict[str, list[dict]] = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row)
    photos = [str(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    assert list(by_image) == sorted([*photos, "corrupt.jpg", "notes.txt", "missing.jpg", "blank.png"])
    assert [r["image"] for r in rows] == sorted(r["image"] for r in rows), "rows are in image-id order"
    for photo in photos:
        faces = by_image[photo]
        assert [r["status"] for r in faces] == ["face"] * len(faces) and [r["face_index"] for r in faces] == list(range(len(faces)))
        for r in faces:
            assert len(r["box"]) == 4 and len(r["landmarks"]) == 5 and 0 < r["score"] <= 1 and r["error"] is None
            assert 0 <= r["age-gender"]["age"] and r["expression"]["label"] and "face" not in r["expression"]
    assert len(by_image[str(PHOTOS / "group_sts106_crew.jpg")]) >= 5
    assert by_image["blank.png"] == [dict.fromkeys(rows[0], None) | {"image": "blank.png", "status": "no_face"}]
    errors = {image: by_image[image][0]["error"] for image in ("corrupt.jpg", "notes.txt", "missing.jpg")}
    assert all(by_image[image][0]["status"] == "error" and by_image[image][0]["box"] is None for image in errors)
    assert "corrupt.jpg" in errors["corrupt.jpg"] and "corrupt or truncated" in errors["corrupt.jpg"]
    assert "notes.txt" in errors["notes.txt"] and "not an image" in errors["notes.txt"]
    assert "missing.jpg" in errors["missing.jpg"] and "no such file" in errors["missing.jpg"]
    assert not (folder / "reference.jsonl.parts").exists(), "the parts are removed once the output is written"


def test_one_worker_and_a_resume_with_other_workers_give_the_same_file(folder, reference):
    out = folder / "one-worker.jsonl"
    summary = facezoo.batch(models(folder), folder / "manifest.csv", out, workers=1, keep_parts=True, progress=False, **SMALL)
    assert out.read_bytes() == reference.read_bytes()
    assert (summary.images, summary.errors, summary.no_face, summary.resumed_chunks) == (21, 3, 1, 0)
    parts = sorted((folder / "one-worker.jsonl.parts").glob("part-*.jsonl"))
    for part in parts[1::2]:
        part.unlink()
    out.unlink()
    summary = facezoo.batch(models(folder), folder / "manifest.csv", out, workers=2, progress=False, **SMALL)
    assert summary.resumed_chunks == len(parts) - len(parts[1::2])
    assert out.read_bytes() == reference.read_bytes()


def test_parquet_holds_the_same_rows_with_task_results_as_json(folder, reference):
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet needs the batch extra (pyarrow)")
    out = folder / "faces.parquet"
    facezoo.batch(models(folder), folder / "manifest.csv", out, workers=2, progress=False, **SMALL)
    table = pq.read_table(out)
    assert table.schema.names == ["image", "status", "face_index", "score", "box", "landmarks", "age-gender", "expression", "error"]
    assert str(table.schema.field("landmarks").type) in ("list<element: list<element: double>>", "list<item: list<item: double>>")
    rows = table.to_pylist()
    for row in rows:
        for task in ("age-gender", "expression"):
            row[task] = None if row[task] is None else json.loads(row[task])
    assert rows == read_jsonl(reference)
    assert json.loads(table.schema.metadata[b"facezoo.batch"])["tasks"] == ["age-gender", "expression"]


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray of 2 CPUs, started as facezoo starts one (loopback only), shared by the Ray tests."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed (pip install 'facezoo[ray]')")
    from facezoo._batch.engines import start_ray

    ray, started = start_ray(None, num_cpus=2)
    yield ray
    if started:
        ray.shutdown()


def _close(a, b) -> bool:
    """Equal rows, numbers to float rounding (ONNX Runtime in a Ray actor has differed from a local
    worker in the fifth significant digit of a box: docs/scale.md)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-4, abs=1e-5)
    return a == b


def test_ray_engine_writes_the_rows_of_the_local_engine(folder, reference, ray_session):
    out = folder / "ray.jsonl"
    summary = facezoo.batch(models(folder), folder / "manifest.csv", out, engine="ray", workers=2, progress=False, **SMALL)
    assert summary.images == 21 and _close(read_jsonl(out), read_jsonl(reference))


def _listening_sockets(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state that processes ``pids`` hold (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address = bytes.fromhex(fields[1].split(":")[0])
                # /proc lists each 32-bit word of the address in host (little-endian) order.
                words = b"".join(address[i : i + 4][::-1] for i in range(0, len(address), 4))
                found.append(".".join(map(str, words[-4:])) if table.endswith("tcp") or words[:12] == b"\0" * 10 + b"\xff\xff" else words.hex())
    return found


def _descendants(pid: int) -> set[int]:
    try:
        children = {int(c) for t in os.listdir(f"/proc/{pid}/task") for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()}
    except OSError:  # it ended meanwhile
        return set()
    return {pid} | {d for c in children for d in _descendants(c)}


def test_local_ray_listens_on_loopback_only(folder, ray_session):
    assert ray_session.util.get_node_ip_address() == "127.0.0.1"
    facezoo.batch(models(folder), [str(PHOTOS / "obama_official_portrait_2012.jpg")], folder / "one.jsonl", engine="ray", workers=1, progress=False)
    addresses = _listening_sockets(_descendants(os.getpid()) - {os.getpid()})
    assert addresses, "found no listening socket of the Ray processes: the check would prove nothing"
    assert set(addresses) == {"127.0.0.1"}, f"Ray listens on {sorted(set(addresses))}"


def _processes_with(marker: str) -> list[int]:
    """The live processes whose environment holds ``marker`` (a run's and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes() and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:  # not ours to read, or it ended meanwhile
            continue
    return found


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'facezoo[ray]')")
def test_a_ray_run_is_quiet_and_leaves_no_ray_process_behind(folder, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "one.jpg").write_bytes((PHOTOS / "obama_official_portrait_2012.jpg").read_bytes())
    marker = f"ray-{os.getpid()}-{time.time_ns()}"  # in the environment of the run and of every process it starts
    command = [sys.executable, "-m", "facezoo", "batch", models(folder), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out.jsonl")]
    env = {**os.environ, "FACEZOO_TEST_RUN": marker}
    proc = subprocess.Popen([*command, "--engine", "ray", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: set[int] = set()
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        seen |= set(_processes_with(marker))
        time.sleep(0.5)
    stdout, stderr = proc.communicate(timeout=max(1, deadline - time.time()))
    assert proc.returncode == 0, stderr
    assert "1 rows for 1 images" in stdout
    assert len(seen - {proc.pid}) >= 2, "found none of Ray's processes while it ran: the check below would prove nothing"
    # Ray Data's notice about its actors' constructor arguments (ray-project/ray#57733) is the one line left.
    noise = [line for line in stderr.splitlines() if "has constructor arguments in the object store" not in line]
    assert noise == [], "Ray's start-up logging reached the console"
    deadline = time.time() + 60  # Ray's helper processes exit on their own once its head is gone; slowly on a busy machine
    while _processes_with(marker) and time.time() < deadline:
        time.sleep(0.2)
    assert not _processes_with(marker), "Ray's processes outlived the run that started them by a minute"


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'facezoo[ray]')")
def test_ray_imported_before_facezoo_gets_a_clear_error_not_a_hung_start(folder, tmp_path):
    """Ray reads its environment when first imported: facezoo then leaves it alone (setting it later split Ray's
    halves: a GCS wanting a token its clients never sent, a 30-second hang) and names what to do."""
    script = (
        "import ray, facezoo\n"  # the user's program imported ray first
        f"facezoo.batch({models(folder)!r}, [{str(PHOTOS / 'obama_official_portrait_2012.jpg')!r}], {str(tmp_path / 'x.jsonl')!r}, engine='ray', workers=1, progress=False)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert "InvalidAuthToken" not in done.stderr and "Failed to start GCS" not in done.stderr
    # where this machine has an address besides loopback, Ray would listen on it: refused, saying why
    assert done.returncode == 0 or "ray was imported before facezoo could set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" in done.stderr, done.stderr[-2000:]


@pytest.fixture(scope="module")
def few(folder, reference) -> tuple[Path, bytes]:
    """A manifest of 6 portraits and the 4 bad or faceless files, and its expected output: with
    one image per unit, an image's rows do not depend on the others, so they are the reference's."""
    keep = sorted(PHOTOS.glob("*portrait*.jpg"))[:3] + sorted(PHOTOS.glob("*_iss.jpg"))[:3]
    assert len(keep) == 6
    names = [str(p) for p in keep] + ["corrupt.jpg", "notes.txt", "missing.jpg", "blank.png"]
    (folder / "few.csv").write_text("path\n" + "".join(f"{n}\n" for n in names))
    lines = [line for line in reference.read_text().splitlines(keepends=True) if json.loads(line)["image"] in names]
    return folder / "few.csv", "".join(lines).encode()


def _run_cli(folder: Path, manifest: Path, out: Path, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "facezoo", "batch", models(folder), "--input", str(manifest), "--output", str(out)]
    command += ["--batch-size", "1", "--chunk-size", "2", *options]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_parts(out: Path, proc: subprocess.Popen, count: int = 1) -> None:
    deadline = time.time() + 120
    while len(list(out.parent.glob(f"{out.name}.parts/part-*{out.suffix}"))) < count:
        assert proc.poll() is None, f"the run ended before {count} part(s) appeared: {proc.communicate()}"
        assert time.time() < deadline, "no part file appeared in 2 minutes"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _worker_pids(pid: int) -> list[int]:
    """The pool's worker processes among ``pid``'s children (not multiprocessing's resource tracker)."""
    return [p for p in _descendants(pid) - {pid} if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def test_a_killed_run_resumes_to_the_uninterrupted_output(folder, few):
    manifest, expected = few
    out = folder / "killed.jsonl"
    proc = _run_cli(folder, manifest, out, "--workers", "1")
    _wait_for_parts(out, proc)
    workers = _worker_pids(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((folder / "killed.jsonl.parts").glob("part-*.jsonl")))
    assert 0 < done < 5 and not out.exists()
    deadline = time.time() + 10
    while [w for w in workers if _alive(w)] and time.time() < deadline:
        time.sleep(0.1)
    assert workers and not [w for w in workers if _alive(w)], "worker processes outlived their killed driver"
    proc = _run_cli(folder, manifest, out, "--workers", "2")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"{done} of 5 chunks from an earlier run" in stdout
    assert out.read_bytes() == expected


def test_a_worker_that_dies_is_replaced_and_the_output_is_complete(folder, few):
    manifest, expected = few
    out = folder / "worker-killed.jsonl"
    proc = _run_cli(folder, manifest, out, "--workers", "2")
    _wait_for_parts(out, proc)
    os.kill(_worker_pids(proc.pid)[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "a worker process died; restarting the pool" in stderr
    assert out.read_bytes() == expected


def test_other_settings_are_refused(folder):
    out = folder / "guarded.jsonl"
    one = [str(PHOTOS / "obama_official_portrait_2012.jpg"), str(PHOTOS / "biden_official_portrait_2013.jpg")]
    facezoo.batch(models(folder), one, out, workers=1, keep_parts=True, progress=False, **SMALL)
    with pytest.raises(facezoo.FacezooError, match=r"other settings \(they differ in: batch_size, chunk_size\)"):
        facezoo.batch(models(folder), one, out, workers=1, progress=False, batch_size=2, chunk_size=4)


def test_inputs_folder_manifests_and_their_errors(folder, tmp_path, caplog):
    listed = inputs.list_images(PHOTOS)
    assert len(listed) == 17 and listed[0] == ("biden_blue_room_2010.jpg", str(PHOTOS / "biden_blue_room_2010.jpg"))
    assert "skipping 2 file(s)" in caplog.text and "README.md" in caplog.text
    (tmp_path / "m.jsonl").write_text('{"id": "b", "path": "x/b.jpg"}\n{"id": "a", "path": "/abs/a.jpg"}\n')
    assert inputs.list_images(tmp_path / "m.jsonl") == [("a", "/abs/a.jpg"), ("b", str(tmp_path / "x" / "b.jpg"))]
    (tmp_path / "bad.csv").write_text("name\nx.jpg\n")
    with pytest.raises(facezoo.InputError, match=r"column of image paths named path or file or image; it has \['name'\]"):
        inputs.list_images(tmp_path / "bad.csv")
    (tmp_path / "twice.csv").write_text("id,path\na,1.jpg\na,2.jpg\n")
    with pytest.raises(facezoo.InputError, match=r"image ids occur more than once \(a\)"):
        inputs.list_images(tmp_path / "twice.csv")
    with pytest.raises(facezoo.InputError, match="no such folder or file"):
        inputs.list_images(tmp_path / "nowhere")
    with pytest.raises(facezoo.FacezooError, match="name it OUT.jsonl or OUT.parquet"):
        facezoo.batch(models(folder), PHOTOS, tmp_path / "out.csv")
    with pytest.raises(facezoo.FacezooError, match=r"chunk_size \(10\) must be a multiple of batch_size \(4\)"):
        facezoo.batch(models(folder), PHOTOS, tmp_path / "out.jsonl", batch_size=4, chunk_size=10)


def test_ray_engine_without_ray_names_the_extra(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(facezoo.MissingExtraError, match=r"pip install 'facezoo\[ray\]'"):
        facezoo.batch(models(folder), [str(PHOTOS / "obama_official_portrait_2012.jpg")], tmp_path / "x.jsonl", engine="ray", progress=False)


class FakeRay:
    """Just what run_ray uses of Ray: it records how Ray was started and stopped, and its actor
    pool answers every unit with no rows."""

    def __init__(self):
        self.inits: list[dict] = []
        self.shutdowns = 0
        outer = self

        class Dataset:
            def __init__(self, items):
                self.items = items

            def map_batches(self, *args, **kwargs):
                return self

            def iter_rows(self):
                return ({"unit": item["unit"], "rows": "[]"} for item in self.items)

        self.data = types.SimpleNamespace(
            DataContext=types.SimpleNamespace(get_current=lambda: types.SimpleNamespace()),
            from_items=lambda items, **_: Dataset(items),
            ActorPoolStrategy=lambda size: size,
        )
        self.util = types.SimpleNamespace(debug=types.SimpleNamespace(log_once=lambda key: True), get_node_ip_address=lambda: "127.0.0.1")

        def init(**kwargs):
            outer.inits.append(kwargs)

        self.init = init

    def is_initialized(self) -> bool:
        return len(self.inits) > self.shutdowns

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture
def fake_ray(monkeypatch):
    from facezoo._batch import engines

    ray = FakeRay()
    monkeypatch.setattr(engines, "import_ray", lambda local: ray)
    monkeypatch.setattr(facezoo._batch, "import_ray", lambda local: ray)
    return ray


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_the_ray_that_facezoo_started_is_shut_down_when_the_run_is_interrupted(folder, tmp_path, fake_ray, monkeypatch, interruption):
    from facezoo._batch.parts import PartsFolder

    def write(self, chunk, rows):
        raise interruption("between two units")

    monkeypatch.setattr(PartsFolder, "write", write)
    two = [str(PHOTOS / "obama_official_portrait_2012.jpg"), str(PHOTOS / "biden_official_portrait_2013.jpg")]
    try:
        facezoo.batch(models(folder), two, tmp_path / "x.jsonl", engine="ray", workers=1, progress=False, **SMALL)
    except interruption:  # while the error is alive (a notebook keeps it), its frames hold the run's engine
        shutdowns = fake_ray.shutdowns
    assert (len(fake_ray.inits), shutdowns) == (1, 1), "Ray must be down before the error leaves facezoo.batch"


def test_rays_own_logs_stay_off_the_console_unless_verbose(folder, tmp_path, fake_ray, caplog):
    one = [str(PHOTOS / "obama_official_portrait_2012.jpg")]
    facezoo.batch(models(folder), one, tmp_path / "quiet.jsonl", engine="ray", workers=1, progress=False)
    with caplog.at_level(logging.INFO, logger="facezoo"):  # what facezoo -v sets
        facezoo.batch(models(folder), one, tmp_path / "verbose.jsonl", engine="ray", workers=1, progress=False)
    quiet, verbose = fake_ray.inits
    assert (quiet["log_to_driver"], quiet["logging_level"]) == (False, logging.WARNING)
    assert (verbose["log_to_driver"], verbose["logging_level"]) == (True, logging.INFO)
    assert fake_ray.shutdowns == 2


# -- hostile folders and outputs ---------------------------------------------------------------------
def test_odd_names_links_and_special_files_each_get_a_row_and_never_block(folder, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    face = (PHOTOS / "obama_official_portrait_2012.jpg").read_bytes()
    (photos / "ok.jpg").write_bytes(face)
    with open(os.fsencode(photos) + b"/caf\xe9.jpg", "wb") as handle:  # a Latin-1 name: not UTF-8
        handle.write(face)
    (photos / "broken.jpg").symlink_to(photos / "nowhere.jpg")
    (photos / "loop.jpg").symlink_to(photos / "loop.jpg")
    (photos / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(photos / "fifo.jpg")
    out = tmp_path / "odd.jsonl"
    command = [sys.executable, "-m", "facezoo", "batch", models(folder), "--input", str(photos), "--output", str(out), "--workers", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert r"are not UTF-8; their rows spell the odd bytes as \xNN: caf\xe9.jpg" in done.stderr
    rows = {row["image"]: row for row in read_jsonl(out)}
    assert set(rows) == {"ok.jpg", r"caf\xe9.jpg", "broken.jpg", "loop.jpg", "zero.jpg", "fifo.jpg"}
    assert rows["ok.jpg"]["status"] == rows[r"caf\xe9.jpg"]["status"] == "face", "the photo with the odd name is analysed too"
    reasons = {"broken.jpg": "a broken symbolic link", "loop.jpg": "a symbolic link loop", "zero.jpg": "is a character device", "fifo.jpg": "is a FIFO"}
    for image, reason in reasons.items():
        assert rows[image]["status"] == "error" and reason in rows[image]["error"], rows[image]


def test_a_non_utf8_name_given_as_one_image_or_in_a_list_gets_a_writable_id(tmp_path):
    path = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.jpg")
    Path(path).write_bytes((PHOTOS / "obama_official_portrait_2012.jpg").read_bytes())
    assert inputs.list_images(path) == [(r"caf\xe9.jpg", path)]
    [(image, listed)] = inputs.list_images([path])
    assert image == path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") and listed == path
    image.encode("utf-8")  # the id can be written; the path still opens the file


@pytest.fixture
def no_models(monkeypatch):
    """Fail if a run gets as far as loading its models: what these tests refuse must be refused before."""

    def refuse(*_):
        raise AssertionError("the models were loaded before the output was checked")

    monkeypatch.setattr("facezoo._batch._check_models", refuse)


ONE = [str(PHOTOS / "obama_official_portrait_2012.jpg")]


def test_an_unwritable_output_is_refused_before_the_models_load(tmp_path, monkeypatch, no_models):
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root writes anywhere: let the folder refuse as it would anyone else

        def refuse(*_, **__):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("facezoo._batch.parts.tempfile.mkstemp", refuse)
    out = locked / "faces.jsonl"
    with pytest.raises(facezoo.FacezooError, match=rf"--output '{out}': cannot write in '{locked}' \(Permission denied\)"):
        facezoo.batch("beauty", ONE, out, progress=False)


def test_an_existing_output_or_foreign_parts_folder_is_never_replaced_unasked(tmp_path, no_models):
    out = tmp_path / "faces.jsonl"
    out.write_text("the user's own file\n")
    with pytest.raises(facezoo.FacezooError, match=r"exists already; choose another name, or pass --overwrite"):
        facezoo.batch("beauty", ONE, out, progress=False)
    assert out.read_text() == "the user's own file\n"
    other = tmp_path / "other.jsonl"
    (tmp_path / "other.jsonl.parts").mkdir()
    (tmp_path / "other.jsonl.parts" / "notes.txt").write_text("mine\n")
    with pytest.raises(facezoo.FacezooError, match=r"holds files that are not a facezoo batch run's"):
        facezoo.batch("beauty", ONE, other, progress=False)
    assert (tmp_path / "other.jsonl.parts" / "notes.txt").read_text() == "mine\n"


def test_a_second_run_on_one_output_is_refused_naming_the_first(tmp_path, no_models):
    from facezoo._batch.parts import PartsFolder

    out = tmp_path / "faces.jsonl"
    first = PartsFolder(out)
    first.lock()
    try:
        with pytest.raises(facezoo.FacezooError, match=rf"another run \(pid {os.getpid()} on .+\) is writing --output '{out}'"):
            facezoo.batch("beauty", ONE, out, progress=False)
    finally:
        first.release()
    assert not (tmp_path / "faces.jsonl.parts").exists(), "the lock leaves nothing behind"


def test_the_lock_of_a_killed_run_is_taken_over_with_a_message(tmp_path, monkeypatch, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "faces.jsonl"
    (tmp_path / "faces.jsonl.parts").mkdir()
    (tmp_path / "faces.jsonl.parts" / "lock").write_text(f"pid {dead.pid} on elsewhere\n")

    def stop(*_):
        raise facezoo.FacezooError("stopped after the lock")

    monkeypatch.setattr("facezoo._batch._check_models", stop)
    with pytest.raises(facezoo.FacezooError, match="stopped after the lock"):
        facezoo.batch("beauty", ONE, out, progress=False)
    assert f"from the run of pid {dead.pid} on elsewhere, which ended without releasing it" in caplog.text
    assert not (tmp_path / "faces.jsonl.parts").exists(), "a run that stops gives its lock back"


def test_chunks_by_default_make_a_small_run_resumable_and_a_chunk_size_implies_the_batch_size():
    from facezoo._batch import _sizes

    assert _sizes(45, None, None) == (16, 16), "45 photos are 3 parts, not one of 512"
    assert _sizes(10_000, None, None) == (16, 512)
    assert _sizes(45, 4, None) == (4, 4)
    assert _sizes(45, None, 8) == (8, 8), "--chunk-size 8 alone is no longer refused"
    assert _sizes(45, None, 20) == (10, 20)
    with pytest.raises(facezoo.FacezooError, match=r"chunk_size \(20\) must be a multiple of batch_size \(16\)"):
        _sizes(45, 16, 20)
