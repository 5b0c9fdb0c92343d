from dlens.common.config import Settings


def test_environment_overrides_defaults(monkeypatch):
    assert Settings().store == "data/store.zarr"
    monkeypatch.setenv("DLENS_STORE", "s3://bucket/prefix")
    monkeypatch.setenv("DLENS_SEED", "7")
    settings = Settings()
    assert settings.store == "s3://bucket/prefix" and settings.seed == 7
