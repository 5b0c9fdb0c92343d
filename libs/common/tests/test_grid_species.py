import numpy as np
import pytest

from dlens.common.grid import FULL, domain_of, lat_index, lon_index, normalise_longitude, parse_domain
from dlens.common.species import MEMBERS, SPECIES, parse_leads, parse_species


def test_full_grid_matches_maccge01():
    assert FULL.shape == (420, 700)
    assert FULL.latitude[0] == 30.05 and FULL.latitude[-1] == 71.95
    assert FULL.longitude[0] == -24.95 and FULL.longitude[-1] == 44.95
    assert np.all(np.diff(FULL.latitude) > 0) and np.all(np.diff(FULL.longitude) > 0)


def test_named_and_explicit_domains_round_trip():
    demo = parse_domain("demo")
    assert demo.shape == (64, 96)
    assert parse_domain(demo.spec()).shape == demo.shape
    crop = parse_domain("45.05,45.35,9.05,9.45")
    assert crop.shape == (4, 5) and crop.bounds == (45.05, 45.35, 9.05, 9.45)
    assert domain_of(crop.latitude, crop.longitude) == parse_domain(crop.spec())


@pytest.mark.parametrize(
    "text", ["45.0,46.0,9.05,9.45", "20.05,30.05,0.05,1.05", "a,b,c,d", "atlantis", "46.05,45.05,9.05,9.45"]
)
def test_bad_domains_are_refused(text):
    with pytest.raises(ValueError):
        parse_domain(text)


def test_indices_and_longitude_normalisation():
    assert lat_index(30.05) == 0 and lon_index(44.95) == 699
    with pytest.raises(ValueError, match="not a MACCGE01 cell centre"):
        lat_index(45.5)
    assert np.allclose(normalise_longitude([335.05, 359.95, 0.05, 44.95]), [-24.95, -0.05, 0.05, 44.95])


def test_species_members_and_thresholds():
    assert len(MEMBERS) == 11 and MEMBERS[0] == "chimere" and MEMBERS[-1] == "silam"
    assert SPECIES["o3"].threshold_ugm3 == 180 and SPECIES["o3"].alert_ugm3 == 240
    assert SPECIES["pm10"].threshold_averaging == "24h" and SPECIES["so2"].threshold_ugm3 == 350
    assert parse_species("pm10,o3") == ["o3", "pm10"]
    with pytest.raises(ValueError, match="unknown species"):
        parse_species("o3,co")


def test_lead_parsing():
    assert parse_leads("0:96:3")[-1] == 96 and len(parse_leads("0:96:3")) == 33
    assert parse_leads("0:24") == list(range(25))
    for bad in ("0:97:3", "5:1:1", "0:24:0", "x"):
        with pytest.raises(ValueError):
            parse_leads(bad)
