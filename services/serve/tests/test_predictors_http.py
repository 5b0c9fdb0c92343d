"""Models with the phase-two predictors over real HTTP: the forecast endpoint reads them from the store and
equals predict, the ensemble endpoint takes them in the body, and a request lacking one gets a 422 naming
it unless the model was trained with predictor dropout."""

from __future__ import annotations

from datetime import datetime

import httpx
import numpy as np
import pytest
import torch
import xarray as xr

from dlens.common.grid import parse_domain
from dlens.common.layout import METEO_VARIABLES
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.model.inference import ensemble
from dlens.model.predictor_store import read_predictors
from dlens.model.predictors import RawPredictors
from dlens.model.registry import load_model, resolve
from dlens.model.static import static_fields
from dlens.serve.app import APP_NAME, build_app
from dlens.serve.args import ServeArgs
from dlens.serve.limits import JSON_BYTES_PER_VALUE, body_limit
from dlens.testing.mock_store import build_mock_store
from dlens.testing.plugin import free_port
from dlens.train.config import TrainConfig
from dlens.train.dataset import store_normaliser
from dlens.train.loop import make_model
from dlens.train.predict import predict, store_predictors
from dlens.train.predictor_stats import store_standardisation
from dlens.train.registry import publish

TOKEN = "test-token"
RUN = datetime(2025, 3, 4)
T0 = np.datetime64(RUN, "h")
SPECIES = ["o3", "no2"]
SUB = "44.45,45.15,7.45,8.15"  # 8 × 8 cells inside the mock store's domain
HOURS = [12, 6]  # the recent analysis 12 and 6 h before the run
PREDICTORS = {
    "meteo": True, "meteo_change": True, "recent_analysis": True, "analysis_delay_h": 6, "analysis_window_h": 12,
    "analysis_step_h": 6, "zenith": True, "statistics": True,
}  # fmt: skip
CONFIG = {
    "name": "needs",
    "data": {
        "species": SPECIES,
        "train": {"start": "2025-03-01", "end": "2025-03-02"},
        "validation": {"start": "2025-03-03", "end": "2025-03-03"},
        "test": {"start": "2025-03-04", "end": "2025-03-05"},
        "predictors": PREDICTORS,
    },
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, ray_cluster) -> tuple[str, dict[str, str]]:
    """A mock store with meteo, three (randomly initialised) models with every predictor, two trained with
    predictor dropout (one on lead 6 h only), and the product of the first (the default) for RUN written by predict."""
    url = str(tmp_path_factory.mktemp("serve-predictors") / "mock.zarr")
    spec = build_mock_store(url, datetime(2025, 3, 1), days=5, leads=(0, 6, 12), meteo=True)
    normaliser = store_normaliser(url)
    ids = {}
    train = TrainConfig.model_validate(CONFIG).data.train
    for seed, (name, dropout, leads) in enumerate(
        (("needs", 0.0, None), ("dropout", 0.3, None), ("day", 0.3, [6]))
    ):
        data = CONFIG["data"] | {"predictors": PREDICTORS | {"dropout": dropout}, "leads": leads}
        config = TrainConfig.model_validate(CONFIG | {"name": name, "data": data})
        torch.manual_seed(seed)
        weights = make_model(config, spec.domain.shape).state_dict()
        standardisation = store_standardisation(url, train, config.data.predictors)
        ids[name] = publish(
            url, config, normaliser, standardisation, weights, spec.domain.shape, {"val_ratio": 1.0}
        )
    predict(url, ids["needs"], [T0])
    return url, ids


@pytest.fixture(scope="module")
def client(store) -> httpx.Client:
    from ray import serve

    url, ids = store
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_app(ServeArgs(store=url, model=ids["needs"], api_token=TOKEN)), name=APP_NAME, route_prefix="/"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
        yield client
    serve.delete(APP_NAME)
    serve.shutdown()


def body(url: str, lead: int, species: str = "o3", **leave_out: bool) -> dict:
    """A JSON request with the members and every predictor from the store, less those in `leave_out`."""
    reader = StoreReader(url)

    def fields(sp: str) -> dict:
        return {
            m: f.tolist() for m, f in zip(MEMBERS, reader.members(sp, T0, lead)[:, 0]) if np.isfinite(f).all()
        }

    def meteo(at: int) -> dict:
        return {v: reader.meteo(v, T0, at).tolist() for v in METEO_VARIABLES}

    recent = {
        sp: [reader.analysis(sp, T0 - np.timedelta64(h, "h"))[0].tolist() for h in HOURS] for sp in SPECIES
    }
    out = {
        "species": species, "run": RUN.isoformat(), "lead": lead, "members": fields(species),
        "context": {sp: fields(sp) for sp in SPECIES if sp != species},
        "meteo": meteo(lead), "meteo_at_run": meteo(0), "recent_analysis": recent,
    }  # fmt: skip
    return {k: v for k, v in out.items() if not leave_out.get(k)}


def test_models_list_their_predictors(store, client):
    listed = {m["id"]: m for m in client.get("/v1/models").json()}
    needs, dropout = listed[store[1]["needs"]], listed[store[1]["dropout"]]
    assert needs["predictors"] == ["meteo", "meteo_change", "recent_analysis", "zenith", "statistics"]
    assert needs["analysis_hours"] == HOURS and needs["optional_predictors"] == []
    assert dropout["optional_predictors"] == ["meteo", "meteo_change", "recent_analysis"]


@pytest.mark.parametrize("lead", [0, 12])
def test_forecast_and_ensemble_with_the_predictors_equal_predict(store, client, lead):
    url, ids = store
    product = StoreReader(url).product(f"dlens-{ids['needs']}", "no2", T0, lead)[0]
    forecast = client.get("/v1/forecast/no2", params={"run": RUN.isoformat(), "lead": lead})
    assert forecast.status_code == 200, forecast.text
    assert np.abs(np.array(forecast.json()["dlens"]) - product).max() <= 1e-4
    posted = client.post("/v1/ensemble", json=body(url, lead, "no2"))
    assert posted.status_code == 200, posted.text
    assert np.abs(np.array(posted.json()["dlens"]) - product).max() <= 1e-4


@pytest.mark.parametrize(
    ("leave_out", "named"),
    [("meteo", "meteo"), ("meteo_at_run", "meteo_change"), ("recent_analysis", "recent_analysis")],
)
def test_a_request_lacking_a_predictor_is_refused_naming_it(store, client, leave_out, named):
    url, ids = store
    answer = client.post("/v1/ensemble", json=body(url, 6, **{leave_out: True}))
    assert answer.status_code == 422, answer.text
    assert f"model {ids['needs']} needs predictor '{named}'" in answer.json()["detail"]
    assert "which the request lacks" in answer.json()["detail"]


def test_a_model_trained_with_predictor_dropout_runs_without_them(store, client):
    url, ids = store
    lacking = body(url, 6, meteo=True, meteo_at_run=True, recent_analysis=True)
    answer = client.post("/v1/ensemble", json=lacking, params={"model": ids["dropout"]})
    assert answer.status_code == 200, answer.text
    full = client.post("/v1/ensemble", json=body(url, 6), params={"model": ids["dropout"]})
    assert np.isfinite(answer.json()["dlens"]).all()
    assert np.abs(np.array(full.json()["dlens"]) - np.array(answer.json()["dlens"])).max() > 0


def test_predictor_fields_that_do_not_fit_are_refused(store, client):
    url, _ = store
    wrong_hours = body(url, 6)
    wrong_hours["recent_analysis"]["o3"] = wrong_hours["recent_analysis"]["o3"][:1]
    answer = client.post("/v1/ensemble", json=wrong_hours)
    assert answer.status_code == 422 and "the analysis 12, 6 h before the run" in answer.json()["detail"]
    partial = body(url, 6)
    del partial["meteo"]["blh"]
    answer = client.post("/v1/ensemble", json=partial)
    assert answer.status_code == 422 and "meteo lacks blh" in answer.json()["detail"]


def test_forecast_names_a_predictor_the_store_lacks(store, client):
    # the store's analysis starts with its first run: nothing before it for the recent analysis
    answer = client.get("/v1/forecast/o3", params={"run": "2025-03-01T00:00", "lead": 6})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert (
        "needs predictor 'recent_analysis'" in detail
        and "which the store lacks for run 2025-03-01T00" in detail
    )


def test_the_body_bound_makes_room_for_the_predictor_fields(store):
    url, ids = store
    entry = resolve(url, ids["needs"])
    given = body(url, 6)
    fields = (
        len(given["meteo"]) + len(given["meteo_at_run"]) + sum(map(len, given["recent_analysis"].values()))
    )
    assert entry.predictors.request_fields(len(entry.species)) == fields == 14
    grown = body_limit(2**40, (16, 24), fields) - body_limit(2**40, (16, 24))
    assert grown == fields * 16 * 24 * JSON_BYTES_PER_VALUE


def test_a_netcdf_body_for_a_model_with_predictors_is_told_to_send_json(store, client):
    url, _ = store
    domain = StoreReader(url).spec.domain
    members = StoreReader(url).members("o3", T0, 6)[:, 0]
    ds = xr.Dataset(
        {"o3": (("member", "latitude", "longitude"), np.nan_to_num(members))},
        coords={"member": list(MEMBERS), "latitude": domain.latitude, "longitude": domain.longitude},
    )
    answer = client.post(
        "/v1/ensemble", content=bytes(ds.to_netcdf(engine="scipy")), headers={"content-type": "application/x-netcdf"},
        params={"species": "o3", "run": RUN.isoformat(), "lead": 6},
    )  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert "(a NetCDF body carries no predictors: send JSON)" in answer.json()["detail"]


def test_ensemble_on_a_sub_domain_reads_the_predictors_there(store, client):
    url, ids = store
    reader, entry, lead = StoreReader(url), resolve(url, ids["needs"]), 12
    sub, whole = parse_domain(SUB), reader.spec.domain
    rows, cols = slice(sub.i0 - whole.i0, sub.i1 - whole.i0), slice(sub.j0 - whole.j0, sub.j1 - whole.j0)

    def crop(fields: dict) -> dict:
        return {k: np.asarray(f)[..., rows, cols].tolist() for k, f in fields.items()}

    full = body(url, lead, "no2")
    cropped = full | {
        "domain": SUB, "members": crop(full["members"]), "context": {"o3": crop(full["context"]["o3"])},
        "meteo": crop(full["meteo"]), "meteo_at_run": crop(full["meteo_at_run"]),
        "recent_analysis": crop(full["recent_analysis"]),
    }  # fmt: skip
    posted = client.post("/v1/ensemble", json=cropped)
    assert posted.status_code == 200, posted.text
    # the predictor channels are pointwise: on the sub-domain (the zenith angle on its grid, the meteo and the
    # analysis of its cells) they are the crop of the whole domain's, as GET and predict read them
    raw = read_predictors(reader, entry.encoder, T0, lead)
    on_sub = RawPredictors(*(f[..., rows, cols] for f in (raw.meteo, raw.meteo_at_run, raw.recent_analysis)))
    valid = T0 + np.timedelta64(lead, "h")
    encoded = entry.encoder.encode(on_sub, entry.normaliser.forward, valid, sub.latitude, sub.longitude)
    np.testing.assert_allclose(encoded, store_predictors(reader, entry, T0, lead)[:, rows, cols], atol=1e-6)
    # the model itself runs on the sub-domain (its convolutions see the sub-domain's edges, so GET's crop is
    # not the expectation): POST equals the model on the cropped members, static fields and predictors
    members = np.stack([reader.members(sp, T0, lead)[:, 0, rows, cols] for sp in SPECIES])
    static = static_fields(reader, entry.static_names, sub)
    expected = ensemble(load_model(url, entry), entry, members[None], static, [lead], [valid], encoded[None])
    assert np.abs(np.array(posted.json()["dlens"]) - expected[0, SPECIES.index("no2")]).max() <= 1e-4


def test_a_lead_the_model_was_not_trained_on_is_refused(store, client):
    url, ids = store
    assert client.post("/v1/ensemble", json=body(url, 6), params={"model": ids["day"]}).status_code == 200
    answer = client.post("/v1/ensemble", json=body(url, 12), params={"model": ids["day"]})
    assert answer.status_code == 422, answer.text
    assert f"model {ids['day']} was trained on leads 6 h only, not 12 h" in answer.json()["detail"]
