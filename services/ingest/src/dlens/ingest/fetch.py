"""`dlens-ingest fetch`: ADS requests (cdsapi) for a period; what arrives is ingested as files.

One request per day and product type, all members and species at once: the ADS answers with a
zip holding one NetCDF per model, which `dlens-ingest files` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dlens.common.grid import Domain
from dlens.common.species import ENSEMBLE_MEMBER, MEMBERS, SPECIES

FORECAST_DATASET = "cams-europe-air-quality-forecasts"


class AdsKeyError(ValueError):
    """No usable ADS key: cdsapi could not be configured."""


@dataclass(frozen=True)
class AdsRequest:
    """One cdsapi retrieve call."""

    dataset: str
    request: dict
    target: str


def build_requests(
    start: date,
    days: int,
    species: Sequence[str],
    leads: Sequence[int],
    levels: Sequence[int],
    domain: Domain,
) -> list[AdsRequest]:
    """The ADS requests for `days` runs from `start` on `domain`: the 11 members and the ENSEMBLE
    forecast, and the ENSEMBLE analysis (the target) of each day."""
    south, north, west, east = domain.bounds
    common = {
        "variable": [SPECIES[s].ads_name for s in species],
        "level": [str(lv) for lv in levels],
        "area": [north, west, south, east],
        "data_format": "netcdf_zip",
    }
    models = [*MEMBERS, ENSEMBLE_MEMBER]
    requests = []
    for d in range(days):
        day = (start + timedelta(days=d)).isoformat()
        forecast = {
            **common, "model": models, "date": [f"{day}/{day}"], "type": ["forecast"], "time": ["00:00"],
            "leadtime_hour": [str(h) for h in leads],
        }  # fmt: skip
        analysis = {
            **common, "model": [ENSEMBLE_MEMBER], "date": [f"{day}/{day}"], "type": ["analysis"],
            "time": [f"{h:02d}:00" for h in range(24)], "leadtime_hour": ["0"],
        }  # fmt: skip
        requests.append(AdsRequest(FORECAST_DATASET, forecast, f"forecast_{day}.zip"))
        requests.append(AdsRequest(FORECAST_DATASET, analysis, f"analysis_{day}.zip"))
    return requests


def retrieve(requests: Sequence[AdsRequest], directory: Path) -> list[Path]:
    """Send the requests with cdsapi (ADS key from ~/.cdsapirc or CDSAPI_URL/CDSAPI_KEY), skipping the
    targets already in `directory`. Each download goes to `<target>.part`, renamed once cdsapi returns
    (it raises on a short download), so an interrupted one is never taken for a complete file."""
    import cdsapi  # imported here: building requests must not need an ADS key

    try:
        client = cdsapi.Client()
    except Exception as exc:  # cdsapi raises a bare Exception for a missing or broken configuration
        raise AdsKeyError(
            f"no ADS key ({str(exc).splitlines()[0]}): put 'url' and 'key' in ~/.cdsapirc "
            "or set CDSAPI_URL and CDSAPI_KEY, or use --dry-run"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for req in requests:
        target = directory / req.target
        if not target.exists():
            part = target.with_name(f"{target.name}.part")  # a leftover of an interrupted run is rewritten
            client.retrieve(req.dataset, req.request, str(part))
            part.replace(target)
        paths.append(target)
    return paths
