"""The EEA station network the synthetic generator places its stations on, as package data.

Reads the EEA station table and its sampling points (``../shared/data/real-cams/Open-Earth-Monitor__
UseCase_AIRCON``, see its SOURCES.md; EEA data, the repository under MIT) and writes
``services/ingest/src/dlens/ingest/synthetic/eea_stations.csv.gz``: one row per station on the CAMS grid
that measures at least one of O3, NO2, SO2, PM10, with its code, country, type, area, position and the
species it measures.

    uv run python tools/eea_stations.py [--source DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "real-cams" / "Open-Earth-Monitor__UseCase_AIRCON"
OUT = REPO / "services" / "ingest" / "src" / "dlens" / "ingest" / "synthetic" / "eea_stations.csv.gz"
POLLUTANTS = {"O3": "o3", "NO2": "no2", "SO2": "so2", "PM10": "pm10"}
#: The MACCGE01 grid's cell centres (DESIGN §2), with half a cell around them.
BOUNDS = {"latitude": (30.0, 72.0), "longitude": (-25.0, 45.0)}


def station_table(source: Path) -> pd.DataFrame:
    stations = pd.read_parquet(source / "EEA_stations_meta_table.parquet")
    points = pd.read_parquet(source / "EEA_stations_meta_SamplingPoint.parquet")
    points = points[points["Air.Pollutant"].isin(POLLUTANTS)]
    measures = (
        points.assign(species=points["Air.Pollutant"].map(POLLUTANTS))
        .groupby("Air.Quality.Station.EoI.Code", observed=True)["species"]
        .agg(lambda s: " ".join(sp for sp in POLLUTANTS.values() if sp in set(s)))
    )
    table = pd.DataFrame(
        {
            "code": stations["Air.Quality.Station.EoI.Code"].astype(str),
            "country": stations["Countrycode"].astype(str),
            "type": stations["Station.Type"].astype(str),
            "area": stations["Station.Area"].astype(str),
            "longitude": stations["Longitude"].round(4),
            "latitude": stations["Latitude"].round(4),
        }
    )
    table["measures"] = table["code"].map(measures)
    inside = table["latitude"].between(*BOUNDS["latitude"]) & table["longitude"].between(*BOUNDS["longitude"])
    return table[inside & table["measures"].notna()].sort_values("code").reset_index(drop=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="folder of the two EEA parquet files")
    args = parser.parse_args()
    table = station_table(args.source)
    table.to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {OUT.relative_to(REPO)}: {len(table)} stations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
