"""The FastAPI app of ``facezoo serve``: a thin HTTP layer over load, predict, analyze and annotate.

Every JSON result is the library's own ``to_dict()``; photos go through the library's decoder
and preprocessing, so the server answers exactly what the Python API answers for the same photo.
What the API offers is documented in ``docs/serve.md`` and, when the server runs, at ``/docs``.

Example:
    >>> app = create_app(models=[facezoo.load("beauty", "test_resnet", pretrained=False)])  # doctest: +SKIP
    >>> TestClient(app).post("/v1/analyze", files={"image": open("photo.jpg", "rb")}).json()  # doctest: +SKIP
    {'faces': [{'face': {...}, 'beauty': {'score': 3.1, ...}}], ...}
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import importlib.util
import io
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FacezooError, MissingExtraError

try:
    from fastapi import APIRouter, Depends, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException
except ImportError as exc:
    raise MissingExtraError(exc.name or "fastapi", "serve", "facezoo serve") from None
if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
    raise MissingExtraError("python-multipart", "serve", "facezoo serve (reading uploaded photos)")

from PIL import Image

from .. import __version__
from .._analyze import Analyzer, FaceAnalysis, runnable_tasks
from .._analyze import annotate as draw_faces
from .._images import decode_photo
from ..errors import ImageTooLargeError, InputError, NotAnImageError, UnknownNameError, unknown_name
from ..results import FaceResult, face_in_photo, in_photo
from ..web import runtime_missing, web_files
from ._gallery import open_gallery
from ._pool import Busy, InferencePool, ReadWriteLock, Timeout
from ._requests import Photo, RequestError, read_photos
from .settings import ServeSettings

if TYPE_CHECKING:
    from .._model import FaceModel

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: What /v1/identify calls a face whose closest enrolled person is below the model's threshold (so no one may be enrolled as it).
UNKNOWN = "unknown"
#: HTTP status of each kind of library error; any other FacezooError is a 400.
STATUS = ((ImageTooLargeError, 413), (NotAnImageError, 415), (UnknownNameError, 404), (InputError, 422))
#: The page loads nothing from elsewhere and runs no inline script.
#: WebAssembly may compile (onnxruntime-web, for the in-browser mode); cross-origin isolation lets it use two threads.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _caption(task: str, result: FaceResult) -> str:
    """A result's label exactly as ``annotate`` draws it (with "(untrained)" for random weights)."""
    return FaceAnalysis(face=result.face, results={task: result}).caption()


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _can(model: Any, *methods: str) -> bool:
    return all(callable(getattr(model, m, None)) for m in methods)


class Service:
    """The loaded models, the inference pool and the gallery file behind one app."""

    def __init__(self, models: Sequence[FaceModel], settings: ServeSettings):
        self.settings = settings
        self.models: dict[str, FaceModel] = {}
        for model in models:
            task = model.config.task
            if task in self.models:
                raise FacezooError(f"two models do task {task!r} ({self.models[task].config.model_id} and {model.config.model_id}); serve one model per task")
            if getattr(model.network, "training", False):
                raise FacezooError(f"{model.config.model_id} is in training mode; call model.network.eval() before serving it")
            self.models[task] = model
        self.locks = {task: ReadWriteLock() for task in self.models}
        self.pool = InferencePool(settings.workers, settings.queue, settings.timeout, settings.receiving)
        self.gallery_store = open_gallery(settings.gallery) if settings.gallery else None
        stored = self.gallery_store.read() if self.gallery_store else {}
        for model in self.models.values():
            people = stored.get(model.config.model_id, {})
            if people and _can(model, "enroll", "identify"):
                if not model.config.trained:
                    logger.warning("%s is untrained: its random weights differ at every start, so the %d people of %s were enrolled "
                                   "with other weights and will not be recognised", model.config.model_id, len(people), settings.gallery)
                too_many = [n for n, v in people.items() if len(v) > settings.gallery_photos]
                if len(people) > settings.gallery_people or too_many:
                    raise FacezooError(
                        f"gallery {str(settings.gallery)!r} holds {len(people)} people for {model.config.model_id}"
                        + (f" ({', '.join(too_many[:3])} with more than {settings.gallery_photos} embeddings)" if too_many else "")
                        + f", over the server's limits (gallery_people={settings.gallery_people}, gallery_photos={settings.gallery_photos}); "
                        "raise them (--gallery-people, --gallery-photos) or use another --gallery"
                    )
                model.gallery.update(people)
        self.index = self._open_index(settings.index) if settings.index else None

    def _open_index(self, path):
        """The face index of ``--index``, searched with the served model that made its embeddings (or its own)."""
        from ..index import FaceIndex

        index = FaceIndex.open(path)
        served = [m for m in self.models.values() if m.config.model_id == index.model_id]
        if served:
            index.use(served[0])
        else:
            index.model()  # loads and checks it now, not on the first request
        logger.info("searching %s: %d faces of %s", path, len(index), index.model_id)
        return index

    # -- choosing models ---------------------------------------------------------------------------
    def find(self, key: str) -> FaceModel:
        """The loaded model of task ``key`` (or with model id ``key``)."""
        for task, model in self.models.items():
            if key in (task, model.config.model_id):
                return model
        raise unknown_name("loaded task", key, self.models, "Start the server with --tasks naming it")

    def choose(self, tasks: str | None) -> list[FaceModel]:
        """The models of a comma-separated task list; every loaded model when empty."""
        names = [t.strip() for t in (tasks or "").split(",") if t.strip()]
        return [self.find(name) for name in names] if names else list(self.models.values())

    def analyzer(self, tasks: str | None) -> Analyzer:
        """One detection pass for the chosen tasks: they must share a detector."""
        models = self.choose(tasks)
        try:
            return Analyzer(models=models)
        except FacezooError:
            detectors = ", ".join(f"{m.config.task}: {m.config.preprocess.detector}" for m in models)
            raise RequestError(
                400, f"these tasks find faces differently ({detectors}); analyze tasks of one detector together (?tasks=...) "
                "or call /v1/predict/{task} for each", "BadRequest",
            ) from None

    def capable(self, key: str | None, methods: tuple[str, ...], what: str) -> FaceModel:
        """The model named ``key`` (default: the first loaded one) that has all ``methods``."""
        able = [m for m in self.models.values() if _can(m, *methods)]
        wanted = " and ".join(f"{m}()" for m in methods)
        if key is None:
            if not able:
                raise RequestError(404, f"no loaded model can {what} (none has {wanted}); start the server with a model that has them", "NotFound")
            return able[0]
        model = self.find(key)
        if model not in able:
            others = ", ".join(m.config.task for m in able) or "none is loaded"
            raise RequestError(400, f"model {key!r} cannot {what} (it has no {wanted}); models that can: {others}", "BadRequest")
        return model

    def reading(self, models: Sequence[FaceModel]) -> ExitStack:
        stack = ExitStack()
        for model in models:
            stack.enter_context(self.locks[model.config.task].reading())
        return stack

    # -- work, on the pool's threads ---------------------------------------------------------------
    def decode(self, photo: Photo) -> Image.Image:
        """The photo as analysed: a large JPEG smaller (``settings.decode_side``); coordinates do not matter to the caller."""
        return self.decode_photo(photo)[0]

    def decode_photo(self, photo: Photo) -> tuple[Image.Image, tuple[float, float], dict]:
        """The photo as analysed, the scale of its own pixels to the analysed ones, and the JSON ``image`` entry."""
        image, (width, height) = decode_photo(photo.data, photo.label, max_pixels=self.settings.max_pixels, max_side=self.settings.decode_side)
        entry = {"width": width, "height": height}
        if image.size != (width, height):
            entry["analysed"] = {"width": image.width, "height": image.height}
        return image, (width / image.width, height / image.height), entry

    def analyze(self, photos: list[Photo], analyzer: Analyzer, annotated: bool) -> dict:
        image, (sx, sy), entry = self.decode_photo(photos[0])
        with self.reading(analyzer.models):
            drawn = analyzer(image)
        faces = [FaceAnalysis(face_in_photo(f.face, sx, sy), {t: in_photo(r, sx, sy) for t, r in f.results.items()}) for f in drawn] if (sx, sy) != (1, 1) else drawn
        out = {
            "faces": [face.to_dict() for face in faces],
            "captions": [{task: _caption(task, result) for task, result in face.results.items()} for face in faces],
            "image": entry,
        }
        if annotated:  # drawn on the photo as analysed (a large JPEG: smaller)
            out["annotated"] = "data:image/jpeg;base64," + base64.b64encode(_jpeg(draw_faces(image, drawn))).decode("ascii")
        return out

    def annotate(self, photos: list[Photo], analyzer: Analyzer) -> bytes:
        image = self.decode(photos[0])
        with self.reading(analyzer.models):
            faces = analyzer(image)
        return _jpeg(draw_faces(image, faces))

    def predict(self, photos: list[Photo], model: FaceModel, detect: bool | None) -> dict:
        image, (sx, sy), entry = self.decode_photo(photos[0])
        with self.reading([model]):
            results = [in_photo(r, sx, sy) for r in model.predict(image, detect=detect)]
        return {
            "faces": [r.to_dict() for r in results],
            "captions": [_caption(model.config.task, r) for r in results],
            "image": entry,
        }

    def verify(self, photos: list[Photo], model: FaceModel) -> dict:
        a, b = (self.decode(p) for p in photos)
        with self.reading([model]):
            return {"model": model.config.model_id, **model.verify(a, b).to_dict()}

    def identify(self, photos: list[Photo], model: FaceModel, top_k: int) -> dict:
        image = self.decode(photos[0])
        with self.reading([model]):
            matches = model.identify(image, top_k=top_k)
        threshold = model.threshold
        return {
            "model": model.config.model_id,
            "threshold": threshold,
            "identities": [face[0].name if face and face[0].similarity >= threshold else UNKNOWN for face in matches],
            "matches": [[m.to_dict() for m in face] for face in matches],
        }

    def search(self, photos: list[Photo], top: int, threshold: float | None) -> dict:
        if self.index is None:
            raise RequestError(404, "this server has no face index; start it with facezoo serve --index IDX (built by facezoo index build)", "NoIndex")
        image, (sx, sy), entry = self.decode_photo(photos[0])
        model = self.index.model()
        if threshold is None:
            threshold = getattr(model, "threshold", None)
        results = [in_photo(r, sx, sy) for r in model.predict(image)]
        matches = self.index.search([r.embedding for r in results], top, threshold=threshold) if results else []
        return {
            "model": model.config.model_id, "threshold": threshold, "indexed_faces": len(self.index),
            "faces": [{"face": r.face.to_dict() if r.face else None, "matches": [m.to_dict() for m in found]} for r, found in zip(results, matches, strict=True)],
            "image": entry,
        }

    def people(self, model: FaceModel) -> dict:
        with self.reading([model]):
            return {"model": model.config.model_id, "people": {name: len(v) for name, v in model.gallery.items()}}

    def _check_room(self, model: FaceModel, name: str, photos: int) -> None:
        """Refuse (409) an enrolment past the gallery's caps: ``gallery_people`` people, ``gallery_photos`` embeddings each."""
        settings, gallery = self.settings, model.gallery
        if name not in gallery and len(gallery) >= settings.gallery_people:
            raise RequestError(409, f"the gallery of {model.config.model_id} is full: {len(gallery)} people, the server's limit "
                               f"(gallery_people={settings.gallery_people}); delete someone first", "GalleryFull")
        held = len(gallery.get(name, ()))
        if held + photos > settings.gallery_photos:
            raise RequestError(409, f"{name!r} would have {held + photos} embeddings, over the server's limit of {settings.gallery_photos} "
                               "per person (gallery_photos); delete the person and enrol fewer, better photos", "GalleryFull")

    def enroll(self, photos: list[Photo], model: FaceModel, name: str) -> dict:
        with self.reading([model]):
            self._check_room(model, name, len(photos))
        images = [self.decode(p) for p in photos]
        with self.locks[model.config.task].writing():
            self._check_room(model, name, len(photos))  # again: another enrolment may have come first
            before = model.gallery.get(name)
            model.enroll(name, images)
            self._save(model, name, before)
            return {"model": model.config.model_id, "name": name, "embeddings": len(model.gallery[name]),
                    "people": {n: len(v) for n, v in model.gallery.items()}}

    def forget(self, model: FaceModel, name: str) -> dict:
        with self.locks[model.config.task].writing():
            if name not in model.gallery:
                raise unknown_name("enrolled person", name, model.gallery)
            before = model.gallery.pop(name)
            self._save(model, name, before)
            return {"model": model.config.model_id, "people": {n: len(v) for n, v in model.gallery.items()}}

    def _save(self, model: FaceModel, name: str, before: Any) -> None:
        """Store ``name``'s change in the gallery (when there is one); undo it in memory if that fails."""
        if self.gallery_store is None:
            return
        try:
            self.gallery_store.save(model, name, model.gallery.get(name))
        except OSError as exc:
            if before is None:
                model.gallery.pop(name, None)
            else:
                model.gallery[name] = before
            raise RequestError(500, f"the gallery {str(self.settings.gallery)!r} cannot be written ({exc}); the change was undone", "GalleryNotSaved") from None

    # -- one request -------------------------------------------------------------------------------
    async def handle(self, request: Request, fields: tuple[str, ...], work: Callable[..., Any], *args: Any, many: bool = False) -> Any:
        """Receive the request's photos (in a receiving slot), admit it (or 503), run ``work(photos, *args)`` on the pool."""
        photos = await self.pool.receive(read_photos(request, self.settings.max_upload_bytes, fields, many=many))
        async with self.pool.admit() as ticket:
            return await ticket.run(work, photos, *args)

    async def run(self, work: Callable[..., Any], *args: Any) -> Any:
        async with self.pool.admit() as ticket:
            return await ticket.run(work, *args)

    def describe(self, model: FaceModel) -> dict:
        config = model.config
        return {
            "task": config.task,
            "model": config.model_id,
            "trained": config.trained,
            "labels": list(config.labels),
            "detector": config.preprocess.detector,
            "can": [what for what, methods in (("verify", ("verify",)), ("gallery", ("enroll", "identify"))) if _can(model, *methods)],
            "config": config.to_dict(),
        }


def _photo_body(fields: Sequence[str], many: bool = False) -> dict:
    """OpenAPI for a body of photos: multipart files or base64 strings in JSON."""
    if many:
        files = {"image": {"type": "array", "items": {"type": "string", "format": "binary"}, "description": "one or more photos"}}
        strings = {"images": {"type": "array", "items": {"type": "string", "format": "byte"}, "description": "base64 photos"}}
        required_files, required_strings = ["image"], ["images"]
    else:
        files = {f: {"type": "string", "format": "binary"} for f in fields}
        strings = {f: {"type": "string", "format": "byte", "description": "base64 (or a data: URL)"} for f in fields}
        required_files = required_strings = list(fields)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": files, "required": required_files}},
                "application/json": {"schema": {"type": "object", "properties": strings, "required": required_strings}},
            },
        }
    }


def _error(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    level = logging.ERROR if status >= 500 else logging.INFO
    logger.log(level, "%d %s: %s", status, error, detail)
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _load(tasks: Sequence[str] | None, models: Sequence[FaceModel] | None, load_options: dict) -> list[FaceModel]:
    from .._factory import load

    if isinstance(tasks, str):
        tasks = [tasks]
    if tasks is None and models is None:
        tasks, skipped = runnable_tasks()
        if not tasks:
            reasons = "; ".join(f"{t}: {why}" for t, why in skipped.items())
            raise FacezooError(f"no task's pretrained model loads offline ({reasons}); name the tasks to serve (with pretrained=False / --untrained for random weights)")
        if skipped:
            logger.warning("serving %s; not serving %s", ", ".join(tasks), "; ".join(f"{t} ({why})" for t, why in skipped.items()))
    loaded = [*(models or []), *(load(task, **load_options) for task in tasks or [])]
    if not loaded:
        raise FacezooError("nothing to serve: pass at least one task or model")
    return loaded


def create_app(tasks: Sequence[str] | None = None, *, models: Sequence[FaceModel] | None = None, settings: ServeSettings | None = None, **load_options: Any) -> FastAPI:
    """The web app serving ``tasks`` (anything :func:`facezoo.load` takes) and/or models already built.

    Models load once, here. With neither, every task whose pretrained model loads offline is
    served. ``load_options`` go to :func:`facezoo.load` (``backbone``, ``pretrained``, ``device``...).

    Example:
        >>> app = create_app(["beauty", "age-gender"], settings=ServeSettings(workers=2))  # doctest: +SKIP
        >>> app = create_app(models=[facezoo.load("beauty", "test_resnet", pretrained=False)])  # doctest: +SKIP
    """
    settings = settings or ServeSettings()
    service = Service(_load(tasks, models, load_options), settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        logger.info("serving %s", ", ".join(m.config.model_id for m in service.models.values()))
        yield
        service.pool.close()

    app = FastAPI(
        title="facezoo",
        version=__version__,
        description="Face analysis: detect faces, then run each loaded task's model on them. "
        "Photos are sent as multipart uploads or base64 in JSON. The web page is at /.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: FastAPI's default pulls Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.service = service
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"],
        )

    @app.exception_handler(FacezooError)
    async def facezoo_error(_: Request, exc: FacezooError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
        return _error(status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, exc.error, str(exc), exc.headers)

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        return _error(503, "Busy", str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Timeout)
    async def timeout(_: Request, exc: Timeout) -> JSONResponse:
        return _error(exc.status, "Timeout", str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, "NotFound" if exc.status_code == 404 else "HTTPError", str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{' '.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return _error(400, "BadRequest", f"invalid request ({problems})")

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises the exception after this answer, so the server's log gets its traceback.
        return _error(500, "InternalError", "the server failed on this request; its log says why")

    bearer = HTTPBearer(auto_error=False, description="the server's token, when it was started with one")

    def check_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        token = settings.token
        if token is not None and (credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode())):
            raise RequestError(401, "this server needs its token: send the header 'Authorization: Bearer <token>'", "Unauthorized", {"WWW-Authenticate": "Bearer"})

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_token)])
    tasks_query = Query(None, description="comma-separated tasks (default: every loaded model), e.g. beauty,age-gender")
    model_query = Query(None, description="task or model id of the model to use (default: the first loaded model that can)")

    @v1.get("/models", summary="the loaded models and the server's limits")
    async def list_models() -> dict:
        limits = {k: getattr(settings, k) for k in ("max_upload_bytes", "max_pixels", "workers", "queue", "receiving", "timeout", "gallery_people", "gallery_photos")}
        return {"models": [service.describe(m) for m in service.models.values()], "limits": limits, "auth": settings.token is not None}

    @v1.post("/analyze", summary="detect the faces of one photo once; every chosen task fills each face", openapi_extra=_photo_body(["image"]))
    async def analyze(request: Request, tasks: str | None = tasks_query, annotate: bool = Query(False, description="add the annotated photo as a JPEG data: URL")) -> dict:
        return await service.handle(request, ("image",), service.analyze, service.analyzer(tasks), annotate)

    @v1.post("/annotate", summary="the photo with each face boxed and labelled (JPEG), as facezoo predict --annotate draws it",
             openapi_extra=_photo_body(["image"]), response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def annotated(request: Request, tasks: str | None = tasks_query) -> Response:
        return Response(await service.handle(request, ("image",), service.annotate, service.analyzer(tasks)), media_type="image/jpeg")

    @v1.post("/predict/{task}", summary="one task's results for each face of one photo", openapi_extra=_photo_body(["image"]))
    async def predict(request: Request, task: str, detect: bool | None = Query(None, description="false: the whole photo is one face")) -> dict:
        return await service.handle(request, ("image",), service.predict, service.find(task), detect)

    @v1.post("/verify", summary="are the main faces of photos a and b the same person?", openapi_extra=_photo_body(["a", "b"]))
    async def verify(request: Request, model: str | None = model_query) -> dict:
        return await service.handle(request, ("a", "b"), service.verify, service.capable(model, ("verify",), "verify faces"))

    @v1.get("/gallery", summary="the people enrolled in a model's gallery")
    async def gallery(model: str | None = model_query) -> dict:
        return await service.run(service.people, service.capable(model, ("enroll", "identify"), "keep a gallery"))

    @v1.post("/gallery/{name}", summary="enrol a person from one or more photos (adds to them if enrolled)", openapi_extra=_photo_body(["image"], many=True))
    async def enroll(request: Request, name: str, model: str | None = model_query) -> dict:
        if len(name) > 100 or not name.isprintable() or not name.strip():
            raise RequestError(400, f"the name must be 1 to 100 printable characters, got {name[:100]!r}", "BadRequest")
        if name.strip().lower() == UNKNOWN:
            raise RequestError(400, f"{name!r} is what /v1/identify answers for a face it does not recognise; enrol the person under another name", "BadRequest")
        chosen = service.capable(model, ("enroll", "identify"), "keep a gallery")
        return await service.handle(request, ("image",), service.enroll, chosen, name, many=True)

    @v1.delete("/gallery/{name}", summary="remove a person from the gallery")
    async def forget(name: str, model: str | None = model_query) -> dict:
        return await service.run(service.forget, service.capable(model, ("enroll", "identify"), "keep a gallery"), name)

    @v1.post("/identify", summary="who each face of one photo is: the closest enrolled person, or 'unknown' below the model's threshold",
             openapi_extra=_photo_body(["image"]))
    async def identify(request: Request, model: str | None = model_query, top_k: int = Query(1, ge=1, le=100)) -> dict:
        return await service.handle(request, ("image",), service.identify, service.capable(model, ("enroll", "identify"), "identify people"), top_k)

    @v1.post("/search", summary="the indexed faces closest to each face of one photo (facezoo serve --index IDX)", openapi_extra=_photo_body(["image"]))
    async def search(
        request: Request, top: int = Query(10, ge=1, le=100),
        threshold: float | None = Query(None, ge=-1, le=1, description="least cosine similarity; default: the model's verification threshold"),
    ) -> dict:
        return await service.handle(request, ("image",), service.search, top, threshold)

    app.include_router(v1)

    @app.get("/healthz", summary="the process is up")
    async def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", summary="the models are loaded and a request would be admitted now")
    async def readyz() -> JSONResponse:
        pool = service.pool
        ready = pool.inside < pool.capacity
        body = {"ready": ready, "inside": pool.inside, "capacity": pool.capacity, "models": [m.config.model_id for m in service.models.values()]}
        return JSONResponse(body, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": str(pool.retry_after())})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title="facezoo API", swagger_js_url="/swagger/swagger-ui-bundle.js",
            swagger_css_url="/swagger/swagger-ui.css", swagger_favicon_url="/swagger/favicon-32x32.png",
        )

    web_manifest, web_sources = web_files(list(service.models.values()))
    web_manifest["runtime_missing"] = runtime_missing()

    @app.get("/web/{path:path}", include_in_schema=False)
    async def web(path: str, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:
        """The in-browser mode's files: facezoo.js, onnxruntime-web and the loaded models as ONNX
        (docs/browser.md). On a server with a token, the manifest and the models need it, as /v1 does."""
        if path == "manifest.json" or path.startswith("models/"):
            check_token(credentials)
        if path == "manifest.json":
            return JSONResponse(web_manifest, headers=PAGE_HEADERS)
        source = web_sources.get(path)
        if source is None or not source.is_file():
            raise RequestError(404, f"/web/{path} is not a file of the in-browser mode; /web/manifest.json lists them", "NotFound")
        return FileResponse(source, media_type=WEB_TYPES.get(source.suffix, "application/octet-stream"), headers=PAGE_HEADERS)

    @app.middleware("http")
    async def isolated(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/static/"):  # the page's own files: cross-origin isolated as the page is
            response.headers.update(PAGE_HEADERS)
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/swagger", StaticFiles(directory=_swagger_ui()), name="swagger")
    return app


def _swagger_ui() -> str:
    """Swagger UI's files from the swagger-ui-bundle package (part of the serve extra): /docs works offline."""
    try:
        import swagger_ui_bundle
    except ImportError:
        raise MissingExtraError("swagger-ui-bundle", "serve", "the offline API page at /docs") from None
    return swagger_ui_bundle.swagger_ui_path


LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: Content types of the in-browser mode's files (a module must be JavaScript, WebAssembly streams only as application/wasm).
WEB_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream", "": "text/plain"}


def server_config(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000, settings: ServeSettings | None = None, log_level: str = "info"):
    """The ``uvicorn.Config`` that :func:`serve` runs ``app`` with: slow clients bounded by the settings.

    uvicorn has no timeout for a request's head: a client that sends ``POST ... HTTP/1.1`` and a
    Host header, then nothing, holds its connection for ever, and its ``limit_concurrency``
    counts such connections, so a few dozen of them made every request (``/readyz`` too) a 503.
    Here a connection whose head is not complete ``header_timeout`` seconds after it opened or
    after its last answer is closed, and the connection limit is ``max_connections``.

    Example:
        >>> uvicorn.Server(server_config(app, port=8000)).run()  # doctest: +SKIP
    """
    import h11
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    settings = settings or ServeSettings()

    class HeadTimeout(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(settings.header_timeout, self._expire)

        def _expire(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                logger.info("closed a connection from %s: no complete request head within %g s", self.client, settings.header_timeout)
                self.transport.close()

    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, server_header=False, http=HeadTimeout,
        limit_concurrency=settings.max_connections, timeout_keep_alive=5,
    )


def serve(tasks: Sequence[str] | None = None, *, models: Sequence[FaceModel] | None = None, host: str = "127.0.0.1", port: int = 8000,
          settings: ServeSettings | None = None, log_level: str = "info", **load_options: Any) -> None:
    """Load the models, then serve them with uvicorn until interrupted (what ``facezoo serve`` runs).

    Example:
        >>> serve(["beauty"], port=8000)  # doctest: +SKIP
    """
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "serve", "facezoo serve") from None
    settings = settings or ServeSettings()
    app = create_app(tasks, models=models, settings=settings, **load_options)
    if host not in LOOPBACK and settings.token is None:
        logger.warning("listening on %s without a token: anyone who reaches this address can use the models (set FACEZOO_SERVE_TOKEN)", host)
    uvicorn.Server(server_config(app, host=host, port=port, settings=settings, log_level=log_level)).run()
