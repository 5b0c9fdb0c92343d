"""Species, members, levels and EU thresholds: the vocabulary every service shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SpeciesName = Literal["o3", "no2", "so2", "pm10"]


@dataclass(frozen=True)
class Species:
    """One pollutant, with the names it goes by in CAMS products."""

    name: str
    ads_name: str
    forecast_variable: str
    long_name: str
    threshold_ugm3: float
    threshold_averaging: Literal["1h", "24h"]
    threshold_kind: str
    alert_ugm3: float | None = None
    #: The EU target value on the maximum daily 8-hour mean (O3 only: 120 µg/m3, Directive 2008/50/EC).
    mda8_target_ugm3: float | None = None

    units: str = "µg/m3"


SPECIES: dict[str, Species] = {
    s.name: s
    for s in (
        Species(
            "o3",
            "ozone",
            "o3_conc",
            "ozone",
            180.0,
            "1h",
            "information",
            alert_ugm3=240.0,
            mda8_target_ugm3=120.0,
        ),
        Species("no2", "nitrogen_dioxide", "no2_conc", "nitrogen dioxide", 200.0, "1h", "limit"),
        Species("so2", "sulphur_dioxide", "so2_conc", "sulphur dioxide", 350.0, "1h", "limit"),
        Species("pm10", "particulate_matter_10um", "pm10_conc", "PM10 aerosol", 50.0, "24h", "limit"),
    )
}
SPECIES_NAMES: tuple[str, ...] = tuple(SPECIES)

#: CAMS Regional members in store order, by their ADS API names.
MEMBERS: tuple[str, ...] = (
    "chimere", "dehm", "emep", "euradim", "gemaq", "lotos",
    "match", "minni", "mocage", "monarch", "silam",
)  # fmt: skip
#: The first group of members the CAMS operational timeline delivers: what an early DL-ENS or median uses.
EARLY_MEMBERS: tuple[str, ...] = ("chimere", "emep", "euradim", "lotos", "mocage", "silam")
#: Named member groups (`--members early`), each a subset of MEMBERS in store order.
MEMBER_GROUPS: dict[str, tuple[str, ...]] = {"all": MEMBERS, "early": EARLY_MEMBERS}
#: The operational median product: ingested as a reference product, never as a model input.
ENSEMBLE_MEMBER = "ensemble"

#: Heights above ground in metres at which CAMS Regional publishes fields.
LEVELS_M: tuple[int, ...] = (0, 50, 100, 250, 500, 750, 1000, 2000, 3000, 5000)


def parse_members(text: str) -> tuple[str, ...]:
    """A member group name (all, early) or a comma-separated member list, in store order."""
    if text.strip().lower() in MEMBER_GROUPS:
        return MEMBER_GROUPS[text.strip().lower()]
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in MEMBERS]
    if unknown or not names:
        raise ValueError(
            f"unknown members {unknown or text!r}; expected {' or '.join(MEMBER_GROUPS)}, or names among "
            f"{','.join(MEMBERS)}"
        )
    return tuple(m for m in MEMBERS if m in names)


def parse_species(text: str) -> list[str]:
    """Parse a comma-separated species list, checking each name."""
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SPECIES]
    if unknown or not names:
        raise ValueError(
            f"unknown species {unknown or text!r}; expected a subset of {','.join(SPECIES_NAMES)}"
        )
    return [s for s in SPECIES_NAMES if s in names]


def parse_leads(text: str) -> list[int]:
    """Parse lead hours given as ``start:stop:step`` (inclusive) or a comma list, within 0..96."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop, step = parts[0], parts[1], parts[2] if len(parts) == 3 else 1
            if step <= 0 or stop < start:
                raise ValueError
            leads, bounds = list(range(start, stop + 1, step)), (start, stop)
        else:
            leads = sorted({int(p) for p in text.split(",")})
            bounds = (leads[0], leads[-1])
    except (ValueError, IndexError):
        raise ValueError(f"leads {text!r}: expected start:stop:step hours, e.g. 0:96:3") from None
    if bounds[0] < 0 or bounds[1] > 96:
        raise ValueError(f"leads {text!r}: hours must lie in 0..96")
    return leads


#: Lead-time blocks (inclusive hours) in which the operational DL-ENS is delivered and verified.
LEAD_BLOCKS: dict[str, tuple[int, int]] = {
    "000-024": (0, 24),
    "025-048": (25, 48),
    "049-072": (49, 72),
    "073-096": (73, 96),
}


def lead_block(lead: int) -> str:
    """The name of the lead-time block that holds `lead` hours."""
    for name, (first, last) in LEAD_BLOCKS.items():
        if first <= lead <= last:
            return name
    raise ValueError(f"lead {lead} h lies outside 0..96")
