"""The serve application over real HTTP on the session Ray cluster: DL-ENS answers equal the train
package's predictions, bad requests get 4xx with a message, the OpenAPI schema survives a fuzz, and
the viewer shows its maps in headless Chromium."""

from __future__ import annotations

import io
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import torch
import xarray as xr

from dlens.common.grid import parse_domain
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.common.store import read_file, write_file
from dlens.model.inference import ensemble
from dlens.model.predictors import Standardisation
from dlens.model.registry import MODELS, load_model, resolve
from dlens.model.static import static_fields
from dlens.serve.app import APP_NAME, build_app
from dlens.serve.args import ServeArgs
from dlens.serve.service import DlensService
from dlens.testing.browser import ARTIFACTS, render_page
from dlens.testing.forwarder import Forwarder
from dlens.testing.mock_store import build_mock_store
from dlens.testing.plugin import free_port
from dlens.train.config import TrainConfig
from dlens.train.dataset import store_normaliser
from dlens.train.export import export
from dlens.train.loop import make_model
from dlens.train.predict import predict
from dlens.train.registry import publish

NO_METEO = Standardisation({}, {})  # the models here read no meteo predictor

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUN = datetime(2025, 3, 4)
MAX_BODY_MB = 1.0
CONFIG = {
    "name": "serve",
    "data": {
        "species": ["o3", "no2", "so2", "pm10"],
        "train": {"start": "2025-03-01", "end": "2025-03-02"},
        "validation": {"start": "2025-03-03", "end": "2025-03-03"},
        "test": {"start": "2025-03-04", "end": "2025-03-05"},
    },
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
}


#: A SwinUNetR with instance norm (at 1/32 of the field): no field of the 16 × 24 mock store is large enough.
INSTANCE_NORM = {"architecture": "SwinUNetR", "settings": {"feature_size": 12, "norm_name": "instance"}}


@pytest.fixture(scope="module")
def store(tmp_path_factory, ray_cluster) -> tuple[str, str]:
    """A mock store, two registered (randomly initialised) models, and the product of the first (the default)
    for RUN written by predict; before them (never `latest`) an INSTANCE_NORM model's card, without weights:
    every request for it is refused before it would be loaded."""
    url = str(tmp_path_factory.mktemp("serve") / "mock.zarr")
    spec = build_mock_store(url, datetime(2025, 3, 1), days=5, leads=(0, 6, 12, 18, 24))
    normaliser = store_normaliser(url)
    instance = TrainConfig.model_validate(CONFIG | {"name": "instance", "model": INSTANCE_NORM})
    publish(url, instance, normaliser, NO_METEO, {}, spec.domain.shape, {"val_ratio": 1.0})
    ids = []
    for seed, name in ((0, "serve"), (1, "other")):
        config = TrainConfig.model_validate(CONFIG | {"name": name})
        torch.manual_seed(seed)
        model = make_model(config, spec.domain.shape)
        ids.append(
            publish(
                url, config, normaliser, NO_METEO, model.state_dict(), spec.domain.shape, {"val_ratio": 1.0}
            )
        )
    predict(url, ids[0], [np.datetime64(RUN, "h")])
    return url, ids[0]


@pytest.fixture(scope="module")
def server(store) -> str:
    """The application on Serve with a token and a 1 MiB body limit; its base URL."""
    from ray import serve

    url, model_id = store
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    args = ServeArgs(store=url, model=model_id, max_body_mb=MAX_BODY_MB, api_token=TOKEN)
    serve.run(build_app(args), name=APP_NAME, route_prefix="/", blocking=False)
    yield f"http://127.0.0.1:{port}"
    serve.delete(APP_NAME)
    serve.shutdown()


@pytest.fixture(scope="module")
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server, headers=AUTH, timeout=60) as client:
        yield client


def members_of(url: str, lead: int) -> np.ndarray:
    """(species, member, H, W) raw members of RUN at `lead` from the store."""
    reader = StoreReader(url)
    return np.stack(
        [reader.members(sp, np.datetime64(RUN, "h"), lead)[:, 0] for sp in CONFIG["data"]["species"]]
    )


def in_process(url: str, model_id: str, members: np.ndarray, lead: int) -> np.ndarray:
    """The train package's own prediction path, in this process."""
    entry = resolve(url, model_id)
    static = static_fields(StoreReader(url), entry.static_names)
    valid = np.datetime64(RUN, "h") + np.timedelta64(lead, "h")
    return ensemble(load_model(url, entry), entry, members[None], static, [lead], [valid])[0]


def json_body(members: np.ndarray, species: str = "o3", lead: int = 12) -> dict:
    """An /v1/ensemble JSON request: `species` in members, the other species in context; NaN members left out."""
    names = CONFIG["data"]["species"]

    def fields(k: int) -> dict:
        return {m: members[k, i].tolist() for i, m in enumerate(MEMBERS) if np.isfinite(members[k, i]).all()}

    k = names.index(species)
    return {
        "species": species, "run": RUN.isoformat(), "lead": lead, "members": fields(k),
        "context": {sp: fields(j) for j, sp in enumerate(names) if j != k},
    }  # fmt: skip


@pytest.mark.parametrize("absent", [(), ("emep",), ("dehm", "gemaq", "match", "minni", "monarch")])
def test_post_json_equals_the_train_prediction(store, client, absent):
    url, model_id = store
    members = members_of(url, 12)
    members[:, [MEMBERS.index(m) for m in absent]] = np.nan
    expected = in_process(url, model_id, members, 12)
    for k, species in enumerate(CONFIG["data"]["species"]):
        response = client.post("/v1/ensemble", json=json_body(members, species))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == model_id and body["species"] == species
        assert (
            body["members_used"] == [m for m in MEMBERS if m not in absent] and body["missing_species"] == []
        )
        assert np.abs(np.array(body["dlens"]) - expected[k]).max() <= 1e-4


def test_post_netcdf_answers_netcdf_with_the_same_field(store, client):
    url, model_id = store
    members = members_of(url, 6)
    domain = StoreReader(url).spec.domain
    names = CONFIG["data"]["species"]
    # CAMS-style: variables named <species>_conc, latitude north → south.
    ds = xr.Dataset(
        {
            f"{sp}_conc": (("member", "latitude", "longitude"), members[k][:, ::-1])
            for k, sp in enumerate(names)
        },
        coords={"member": list(MEMBERS), "latitude": domain.latitude[::-1], "longitude": domain.longitude},
    )
    response = client.post(
        "/v1/ensemble", content=bytes(ds.to_netcdf(engine="scipy")), headers={"content-type": "application/x-netcdf"},
        params={"species": "no2", "run": RUN.isoformat(), "lead": 6},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-netcdf"
    out = xr.open_dataset(io.BytesIO(response.content), engine="scipy")
    assert out.attrs["model"] == model_id
    expected = in_process(url, model_id, members, 6)[1]
    assert np.abs(out["no2"].values - expected).max() <= 1e-4


@pytest.mark.parametrize("form", ["json", "netcdf"])
def test_forecast_equals_the_stored_product(store, client, form):
    url, model_id = store
    reader = StoreReader(url)
    for species in ("o3", "pm10"):
        for lead in (0, 18):
            response = client.get(
                f"/v1/forecast/{species}", params={"run": RUN.isoformat(), "lead": lead, "format": form}
            )
            assert response.status_code == 200, response.text
            product = reader.product(f"dlens-{model_id}", species, np.datetime64(RUN, "h"), lead)[0]
            median = np.nanmedian(reader.members(species, np.datetime64(RUN, "h"), lead)[:, 0], axis=0)
            if form == "json":
                dlens, served_median = np.array(response.json()["dlens"]), np.array(response.json()["median"])
            else:
                ds = xr.open_dataset(io.BytesIO(response.content), engine="scipy")
                dlens, served_median = ds[species].values, ds[f"{species}_median"].values
            assert np.abs(dlens - product).max() <= 1e-4
            np.testing.assert_allclose(served_median, median, rtol=1e-6)


def test_two_models_are_served_side_by_side_each_loaded_once(store, client):
    from ray import serve

    url, default = store
    other = next(m["id"] for m in client.get("/v1/models").json() if m["id"].startswith("other"))
    members = members_of(url, 6)
    for model_id in (other, default, other):
        answer = client.post("/v1/ensemble", json=json_body(members, "so2", 6), params={"model": model_id})
        assert answer.status_code == 200 and answer.json()["model"] == model_id, answer.text
        expected = in_process(url, model_id, members, 6)[2]
        assert np.abs(np.array(answer.json()["dlens"]) - expected).max() <= 1e-4
    assert np.abs(expected - in_process(url, default, members, 6)[2]).max() > 0.01  # two different models
    loads = serve.get_deployment_handle("DLENS", APP_NAME).stats.remote().result()["loads"]
    assert loads == {default: 1, other: 1}


def test_a_species_given_alone_is_answered_and_the_others_reported_missing(store, client):
    members = members_of(store[0], 12)
    body = json_body(members, "no2") | {"context": {}}
    answer = client.post("/v1/ensemble", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["missing_species"] == ["o3", "so2", "pm10"]


def test_forecast_crops_a_domain_and_draws_png(store, client):
    url, _ = store
    full = client.get("/v1/forecast/o3", params={"run": RUN.isoformat(), "lead": 12}).json()
    crop = client.get(
        "/v1/forecast/o3", params={"run": RUN.isoformat(), "lead": 12, "domain": "44.55,45.05,8.05,8.55"}
    )
    assert crop.status_code == 200, crop.text
    domain, store_domain = parse_domain("44.55,45.05,8.05,8.55"), StoreReader(url).spec.domain
    rows, cols = (
        slice(domain.i0 - store_domain.i0, domain.i1 - store_domain.i0),
        slice(domain.j0 - store_domain.j0, domain.j1 - store_domain.j0),
    )
    np.testing.assert_array_equal(np.array(crop.json()["dlens"]), np.array(full["dlens"])[rows, cols])
    png = client.get("/v1/forecast/o3", params={"run": RUN.isoformat(), "lead": 12, "format": "png"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 20_000


def test_service_endpoints(store, client, server):
    _, model_id = store
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}  # no token needed
    ready = httpx.get(f"{server}/readyz", timeout=60)
    assert ready.status_code == 200 and ready.json()["model"] == model_id
    models = {m["id"]: m["default"] for m in client.get("/v1/models").json()}
    assert len(models) == 3 and [i for i, default in models.items() if default] == [model_id]
    runs = client.get("/v1/runs").json()
    assert runs["runs"][0].startswith("2025-03-01") and runs["leads"] == [0, 6, 12, 18, 24]
    assert "/v1/ensemble" in httpx.get(f"{server}/openapi.json").json()["paths"]
    assert httpx.get(f"{server}/docs").status_code == 200


def test_a_bundle_is_served_without_the_registry(store, client, server, tmp_path):
    """dlens-train export, then a copy of the store without its registry: the bundle's model gives the
    same answers as the registry's."""
    from ray import serve

    url, model_id = store
    bundle = tmp_path / "bundle"
    export(url, model_id, bundle)
    bare = tmp_path / "bare.zarr"
    shutil.copytree(url, bare, ignore=shutil.ignore_patterns("models"))
    args = ServeArgs(
        store=str(bare), model=model_id, bundles=(str(bundle),), api_token=TOKEN, reader_refresh_s=0
    )
    # Its replica asks for no CPU: the session cluster's two are held by the main app and earlier tests.
    app = DlensService.options(ray_actor_options={"num_cpus": 0}).bind(args)
    serve.run(app, name="bundle", route_prefix="/bundle", blocking=False)
    try:
        with httpx.Client(base_url=f"{server}/bundle", headers=AUTH, timeout=120) as bundled:
            assert [m["id"] for m in bundled.get("/v1/models").json()] == [model_id]
            body = json_body(members_of(url, 12), "no2")
            answer, reference = (
                bundled.post("/v1/ensemble", json=body),
                client.post("/v1/ensemble", json=body),
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"] == model_id and answer.json()["dlens"] == reference.json()["dlens"]
        # The prefix does not hide a route from the token check; the public routes stay public under it.
        assert httpx.get(f"{server}/bundle/v1/models").status_code == 401
        assert httpx.get(f"{server}/bundle/openapi.json").status_code == 200
        assert httpx.get(f"{server}/bundle/healthz").json() == {"status": "ok"}
        # Not ready once its store is gone: the public probe says which part, not the store's path.
        bare.rename(tmp_path / "gone.zarr")
        ready = httpx.get(f"{server}/bundle/readyz", timeout=60)
        assert ready.status_code == 503 and "the store" in ready.json()["detail"], ready.text
        assert str(tmp_path) not in ready.text and "bare.zarr" not in ready.text, ready.text
    finally:
        serve.delete("bundle")


def _eventually(check, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_store_outage_gets_503_saying_why_and_serve_recovers_by_itself(
    store, server, s3_endpoint, s3_bucket
):
    """A one-run store on S3 with the default model, reached through a forwarder: down when the replica
    starts (it starts, not ready, 503 saying why), then up (ready by itself), stalled (the request waiting on
    it gets a 503 within seconds while /healthz answers; the registry and runs read before are served), down
    (503 at once) and up again (answered)."""
    from ray import serve

    url, model_id = store
    s3_store = f"{s3_bucket}/outage.zarr"
    build_mock_store(s3_store, RUN, days=1, leads=(0,))
    for name in ("weights.pt", "model.json"):
        write_file(s3_store, f"{MODELS}/{model_id}/{name}", read_file(url, f"{MODELS}/{model_id}/{name}"))
    endpoint = urlparse(s3_endpoint)
    s3 = Forwarder((endpoint.hostname, endpoint.port))  # not started: the store is down
    args = ServeArgs(
        store=s3_store, model=model_id, api_token=TOKEN, reader_refresh_s=0, store_timeout_s=1.5,
        store_attempts=2, store_retry_s=2,
    )  # fmt: skip
    env = {"env_vars": {"DLENS_S3_ENDPOINT_URL": s3.endpoint}}
    app = DlensService.options(ray_actor_options={"num_cpus": 0, "runtime_env": env}).bind(args)
    serve.run(app, name="outage", route_prefix="/outage", blocking=False)
    forecast = {"run": RUN.isoformat(), "lead": 0}
    try:
        with httpx.Client(base_url=f"{server}/outage", headers=AUTH, timeout=30) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "store is unreachable" in ready.json()["detail"], ready.text
            refused = client.get("/v1/models")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "2", refused.text
            assert "unreachable (EndpointConnectionError since" in refused.json()["detail"], refused.text
            assert str(s3.port) not in refused.text and "outage.zarr" not in refused.text

            s3.start()
            _eventually(lambda: client.get("/readyz").status_code == 200, timeout_s=20)
            assert client.get("/v1/forecast/o3", params=forecast).status_code == 200

            s3.stall()
            with ThreadPoolExecutor(1) as pool:
                start = time.monotonic()
                stalled = pool.submit(client.get, "/v1/forecast/o3", params=forecast)
                time.sleep(0.3)
                assert client.get("/healthz").json() == {"status": "ok"} and not stalled.done()
                answer, took = stalled.result(), time.monotonic() - start
            assert answer.status_code == 503 and "unreachable (ReadTimeoutError" in answer.text, answer.text
            assert took < 10, f"a stalled store held the request {took:.1f} s"
            assert [m["id"] for m in client.get("/v1/models").json()] == [model_id]  # the last registry read
            assert client.get("/v1/runs").json()["runs"] == [RUN.isoformat()]  # the last run index read

            s3.stop()
            time.sleep(args.store_retry_s)  # the back-off is over: the store is tried, refused
            start = time.monotonic()
            refused = client.get("/v1/forecast/o3", params=forecast)
            assert refused.status_code == 503 and "EndpointConnectionError" in refused.text, refused.text
            assert time.monotonic() - start < 5

            s3.start()
            _eventually(
                lambda: client.get("/v1/forecast/o3", params=forecast).status_code == 200, timeout_s=10
            )
            assert client.get("/readyz").status_code == 200
    finally:
        serve.delete("outage")
        s3.stop()


def _bad_requests(url: str) -> list[tuple[str, dict, int, str]]:
    """(name, httpx request kwargs, expected status, a word the message must hold)."""
    members = members_of(url, 12)
    good = json_body(members)
    wrong_shape = json_body(members) | {"members": {"chimere": [[1.0, 2.0], [3.0, 4.0]]}}
    nan = json_body(members)
    nan["members"]["chimere"][0][0] = float("nan")
    inf = json_body(members)
    inf["members"]["emep"][1][1] = float("inf")
    big = json_body(members)
    big["context"]["no2"]["chimere"] = [[1.0] * 3000] * 100  # ≈ 1.2 MB of JSON
    # Under max_body_mb (1 MiB), over what a request on the 16 × 24 store can take (0.88 MB); not JSON, so a
    # 413 (not a 422) says it was refused unparsed, by its Content-Length or as it streamed in.
    unparsed = b"[" * 1_000_000
    post = lambda **kw: {"method": "POST", "url": "/v1/ensemble", **kw}  # noqa: E731
    as_json = lambda body: {"content": _dumps(body), "headers": {"content-type": "application/json"}}  # noqa: E731
    netcdf = {"content-type": "application/x-netcdf"}
    params = {"species": "o3", "run": RUN.isoformat(), "lead": 12}
    return [
        ("wrong shape", post(**as_json(wrong_shape)), 422, "2×2"),
        ("unknown species", post(**as_json(good | {"species": "co"})), 422, "species"),
        ("unknown member", post(**as_json(good | {"members": {"cmaq": [[1.0]]}})), 422, "members"),
        ("NaN values", post(**as_json(nan)), 422, "non-finite"),
        ("inf values", post(**as_json(inf)), 422, "non-finite"),
        ("no member", post(**as_json(good | {"members": {}})), 422, "no member"),
        ("level 50", post(**as_json(good | {"level": 50})), 422, "level"),
        ("domain outside", post(**as_json(good | {"domain": "demo"})), 422, "not inside"),
        ("oversized body", post(**as_json(big)), 413, "limit"),
        (
            "body over the domain's",
            post(content=unparsed, headers={"content-type": "application/json"}),
            413,
            "limit",
        ),
        (
            "streamed body over the domain's",
            post(content=iter([unparsed[:500_000]] * 2), headers={"content-type": "application/json"}),
            413,
            "limit",
        ),
        (
            "malformed JSON",
            post(content=b'{"species": "o3", "members": {', headers={"content-type": "application/json"}),
            422,
            "JSON",
        ),
        (
            "malformed NetCDF",
            post(content=b"CDF\x01 not really", headers=netcdf, params=params),
            400,
            "NetCDF",
        ),
        ("not NetCDF", post(content=b"hello", headers=netcdf, params=params), 400, "NetCDF"),
        (
            "NetCDF without run",
            post(content=b"CDF\x01", headers=netcdf, params={"species": "o3"}),
            422,
            "run",
        ),
        (
            "unknown content type",
            post(content=b"x", headers={"content-type": "text/csv"}),
            415,
            "content type",
        ),
        ("unknown model", post(**as_json(good), params={"model": "nope"}), 404, "nope"),
        (
            "forecast unknown run",
            {"method": "GET", "url": "/v1/forecast/o3", "params": {"run": "2030-01-01", "lead": 0}},
            404,
            "not in the store",
        ),
        (
            "forecast unknown lead",
            {"method": "GET", "url": "/v1/forecast/o3", "params": {"run": RUN.isoformat(), "lead": 7}},
            422,
            "lead",
        ),
        (
            "forecast bad format",
            {
                "method": "GET",
                "url": "/v1/forecast/o3",
                "params": {"run": RUN.isoformat(), "lead": 0, "format": "gif"},
            },
            422,
            "format",
        ),
        (
            "NetCDF declaring huge dimensions",
            post(content=_netcdf4_declaring(100_000, 100_000), headers=netcdf, params=params),
            422,
            "at most",
        ),
        (
            "NetCDF with an empty latitude",
            post(content=_netcdf4_declaring(0, 32), headers=netcdf, params=params),
            422,
            "empty",
        ),
        (
            "NetCDF-4 variable stored in a file of the server's",
            post(content=_netcdf4_stored_in("/proc/self/environ"), headers=netcdf, params=params),
            422,
            "stored in external files",
        ),
        (
            "NetCDF member label not UTF-8",
            post(content=_netcdf(url, members[0], label=b"\xff\xfe"), headers=netcdf, params=params),
            422,
            "UTF-8",
        ),
        (
            "forecast overflowing domain",
            {
                "method": "GET",
                "url": "/v1/forecast/o3",
                "params": {"run": RUN.isoformat(), "lead": 0, "domain": "1e999,45.05,8.05,9.05"},
            },
            422,
            "finite",
        ),
        (
            "forecast bad domain",
            {
                "method": "GET",
                "url": "/v1/forecast/o3",
                "params": {"run": RUN.isoformat(), "lead": 0, "domain": "mars"},
            },
            422,
            "domain",
        ),
    ]


def _netcdf(url: str, members: np.ndarray, label: bytes) -> bytes:
    """An o3 NetCDF-3 body of the members (member, lat, lon) on the store's domain, the first member labelled
    with the raw bytes `label`."""
    domain = StoreReader(url).spec.domain
    latitude = domain.latitude
    names = np.array([label, *(m.encode() for m in MEMBERS[1:])], dtype="S16")
    field = members.astype(np.float32)
    ds = xr.Dataset(
        {"o3": (("member", "latitude", "longitude"), field)},
        {"member": names, "latitude": latitude, "longitude": domain.longitude},
    )
    return bytes(ds.to_netcdf(engine="scipy"))


def _netcdf4_declaring(latitude: int, longitude: int) -> bytes:
    """A NetCDF-4 body declaring an o3 field per member of this size, none of its chunks written (64 KB for
    410 GB of 1e5 × 1e5 fields)."""
    import netCDF4

    nc = netCDF4.Dataset("declared", "w", memory=4096, format="NETCDF4")
    for name, size in (("member", len(MEMBERS)), ("latitude", latitude), ("longitude", longitude)):
        nc.createDimension(name, size)  # a size of 0 is an (empty) unlimited dimension
    nc.createVariable("member", str, ("member",))[:] = np.array(MEMBERS, dtype=object)
    for name in ("latitude", "longitude"):
        nc.createVariable(name, "f8", (name,))
    nc.createVariable("o3", "f4", ("member", "latitude", "longitude"), chunksizes=(1, 1, min(longitude, 100)))
    return bytes(nc.close())


def _netcdf4_stored_in(path: str) -> bytes:
    """A NetCDF-4 (HDF5) body whose o3 is stored in the file `path` of the server (HDF5 external storage)."""
    import h5py

    out = io.BytesIO()
    with h5py.File(out, "w") as file:
        file.create_dataset("o3", (len(MEMBERS), 16, 24), "f4", external=[(path, 0, h5py.h5f.UNLIMITED)])
    return out.getvalue()


def _dumps(body: dict) -> bytes:
    import json

    return json.dumps(body).encode()  # allow_nan: NaN and Infinity reach the server as JSON5-style literals


def test_bad_requests_get_a_4xx_with_a_message(store, client):
    url, _ = store
    for name, request, status, word in _bad_requests(url):
        response = client.request(**request)
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        assert word.lower() in response.text.lower(), (name, response.text[:300])
        assert response.headers["content-type"].startswith("application/json"), name


def test_a_field_too_small_for_the_model_is_refused_and_the_replica_stays_healthy(store, client, server):
    """The INSTANCE_NORM model's norm at 1/32 would see one cell of a field within 32 × 32: a 422 naming the
    limit, before batching or loading. The replica then answers, stays ready and reports itself healthy."""
    from ray import serve

    url, _ = store
    instance = next(m["id"] for m in client.get("/v1/models").json() if m["id"].startswith("instance"))
    one_cell = json_body(members_of(url, 12)[:, :, :1, :1]) | {"domain": "44.05,44.05,7.05,7.05"}
    refused = client.post("/v1/ensemble", json=one_cell, params={"model": instance})
    assert refused.status_code == 422, refused.text
    assert "more than 32 rows or columns" in refused.json()["detail"] and "1×1" in refused.text
    whole = client.get("/v1/forecast/o3", params={"run": RUN.isoformat(), "lead": 12, "model": instance})
    assert whole.status_code == 422 and "16×24" in whole.text, whole.text
    assert client.post("/v1/ensemble", json=one_cell).status_code == 200  # the default model takes one cell
    assert httpx.get(f"{server}/readyz", timeout=60).json()["status"] == "ready"
    serve.get_deployment_handle("DLENS", APP_NAME).check_health.remote().result()  # raises when unhealthy


def test_the_token_is_required_on_v1(server):
    assert httpx.get(f"{server}/v1/models").status_code == 401
    non_ascii = httpx.get(f"{server}/v1/models", headers={"Authorization": "Bearer tökén".encode()})
    assert non_ascii.status_code == 401 and "token" in non_ascii.json()["detail"]
    wrong = httpx.get(f"{server}/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.json()["detail"]
    assert httpx.get(f"{server}/v1/models", headers=AUTH).status_code == 200


@pytest.mark.slow
def test_openapi_fuzz_finds_no_server_error(server):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    failures, calls = [], []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def fuzz(case) -> None:
            response = case.call(base_url=server, headers=AUTH, timeout=60)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {response.text[:200]}"
                )

        fuzz()
    assert not failures, "\n".join(failures[:10])
    assert len(calls) >= 50 and {200, 422} <= set(calls), sorted(set(calls))


def test_the_viewer_shows_the_maps_in_chromium(server, tmp_path):
    page = render_page(
        f"{server}/#token={TOKEN}", ARTIFACTS / "serve-viewer.png", tmp_path / "profile", visible="#maps"
    )
    images = page.images
    assert TOKEN not in page.url  # the link's token is not left in the address bar or the history
    assert [i["alt"] for i in images] == ["Maps of the median ENSEMBLE, DL-ENS and DL-ENS minus median"]
    assert images[0]["width"] > 500
