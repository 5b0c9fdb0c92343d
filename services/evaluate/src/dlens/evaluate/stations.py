"""Verification at stations: gridded products interpolated (bilinear) to the stations of the store's
`observations` group and paired with their hourly observations.

Stations are scored in sets: every station the analysis may assimilate (`all`), those of each EEA station
type, and the withheld stations apart (never assimilated: the independent check), all of them and the
background ones (like for like with `background`: the types differ in representativeness). A set's
scores come from summed statistics (`metrics.sum_statistics`), so they add up over leads, runs and tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlens.common.grid import Domain, bilinear_weights, inside
from dlens.common.layout import OBSERVATIONS
from dlens.common.reader import StoreReader
from dlens.evaluate.metrics import sum_statistics

#: Station types of the EEA network (the e-reporting `StationType`).
STATION_TYPES: tuple[str, ...] = ("background", "traffic", "industrial")
#: The sets stations are scored in, and what each holds.
STATION_SETS: dict[str, str] = {
    "all": "every station not withheld",
    **{kind: f"{kind} stations not withheld" for kind in STATION_TYPES},
    "withheld": "stations withheld from every analysis (independent), every type",
    "withheld-background": "background stations withheld from every analysis (like for like with background)",
}


@dataclass(frozen=True)
class StationNetwork:
    """The station metadata of a store's observations group (one value per station)."""

    code: np.ndarray
    kind: np.ndarray  # station type
    area: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    withheld: np.ndarray

    @classmethod
    def read(cls, reader: StoreReader) -> StationNetwork | None:
        """The network of the store, or None when it holds no observations."""
        if not reader.has(OBSERVATIONS):
            return None
        g = reader.root[OBSERVATIONS]
        return cls(
            code=np.asarray(g["station_code"][:].tolist(), dtype=str),
            kind=np.asarray(g["station_type"][:].tolist(), dtype=str),
            area=np.asarray(g["station_area"][:].tolist(), dtype=str),
            latitude=np.asarray(g["station_latitude"][:], dtype=np.float64),
            longitude=np.asarray(g["station_longitude"][:], dtype=np.float64),
            withheld=np.asarray(g["withheld"][:], dtype=bool),
        )

    def set_masks(self) -> np.ndarray:
        """(len(STATION_SETS), station) boolean: which stations each set holds."""
        kept = ~self.withheld
        kinds = [kept & (self.kind == kind) for kind in STATION_TYPES]
        return np.stack([kept, *kinds, self.withheld, self.withheld & (self.kind == "background")])


@dataclass(frozen=True)
class StationSampler:
    """The stations of a network inside a domain, with their bilinear weights onto its cells."""

    index: np.ndarray  # positions in the network of the stations inside the domain
    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    masks: np.ndarray  # (len(STATION_SETS), len(index))

    @classmethod
    def for_domain(cls, network: StationNetwork, domain: Domain) -> StationSampler:
        index = np.flatnonzero(inside(domain, network.latitude, network.longitude))
        rows, cols, weights = bilinear_weights(domain, network.latitude[index], network.longitude[index])
        return cls(index, rows, cols, weights, network.set_masks()[:, index])

    def __len__(self) -> int:
        return len(self.index)

    def sample(self, field: np.ndarray) -> np.ndarray:
        """A (..., lat, lon) field at the stations, (..., station): NaN where a neighbour is NaN."""
        return (field[..., self.rows, self.cols] * self.weights).sum(axis=-1)

    def observed(self, values: np.ndarray) -> np.ndarray:
        """The network's (station,) values at the stations inside the domain."""
        return values[self.index]


def station_sums(forecast: np.ndarray, observed: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Summed statistics per station set, (len(masks), len(STATISTICS)), of (..., station) pairs."""
    sums = sum_statistics(forecast, observed, masks)
    return sums.reshape(-1, *sums.shape[-2:]).sum(axis=0)


def per_station_sums(forecast: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(station, 3) sums of squared error, error and count over the leading dims of (..., station) pairs."""
    err = np.asarray(forecast, dtype=np.float64) - observed
    ok = np.isfinite(err)
    err = np.where(ok, err, 0.0).reshape(-1, err.shape[-1])
    return np.stack([(err * err).sum(axis=0), err.sum(axis=0), ok.reshape(err.shape).sum(axis=0)], axis=-1)
