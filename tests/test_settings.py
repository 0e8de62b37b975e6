"""Deployment settings: public mode from the environment or --share, the caps it applies, refusals of bad values."""
from dataclasses import dataclass, replace

import pytest

from sentiment.config import ConfigError, setting
from sentiment.model.network import ModelConfig
from sentiment.settings import PublicLimits, Settings
from sentiment.train.config import TrainConfig


def test_public_limits_cap_everything_that_drives_memory_or_time_and_say_so():
    limits = PublicLimits()
    config, model, note = limits.apply(TrainConfig(epochs=50, limit=0, batch_size=20_000, max_len=5000, pretrain_epochs=9,
                                                   sentences=10),
                                       ModelConfig(hidden_size=4096, embedding_dim=4096, num_layers=8, bidirectional=True))
    assert (config.limit, config.epochs, config.batch_size, config.max_len, config.pretrain_epochs, config.sentences) == (
        5000, 5, 256, 400, 1, 2)
    assert (model.hidden_size, model.embedding_dim, model.num_layers, model.bidirectional) == (256, 256, 2, False)
    for part in ("batch_size 256", "max_len 400", "sentences 2", "bidirectional off", "hidden_size 256", f"{limits.max_seconds:.0f} s"):
        assert part in note
    small = (replace(TrainConfig(), epochs=2, limit=1000, batch_size=64), ModelConfig(embedding_dim=64, hidden_size=64, num_layers=1))
    assert limits.apply(*small)[:2] == small and "Public demo limits applied" not in limits.apply(*small)[2]


def test_a_public_cap_is_declared_on_its_field_and_applied_from_there():
    @dataclass
    class WithWarmup(TrainConfig):
        warmup: int = setting(0, "warm-up steps", "steps of rising learning rate", low=0, high=1000, public=100)

    config, _, note = PublicLimits().apply(WithWarmup(warmup=900), ModelConfig())
    assert config.warmup == 100 and "warmup 100" in note


@pytest.mark.parametrize("environ,share,public,uploads", [
    ({}, False, False, True),
    ({"SPACE_ID": "someone/lstm-lab"}, False, True, False),  # a Space is public
    ({}, True, True, False),  # so is a share link
    ({"SPACE_ID": "someone/lstm-lab", "SENTIMENT_PUBLIC": "0"}, False, False, True),  # unless switched off explicitly
    ({"SENTIMENT_PUBLIC": "yes", "SENTIMENT_ALLOW_UPLOADS": "on"}, False, True, True),
])
def test_public_mode_is_on_for_spaces_and_share_links_unless_switched_off(environ, share, public, uploads):
    settings = Settings.from_env(environ, share=share)
    assert (settings.public, settings.allow_uploads) == (public, uploads)
    assert (settings.run_limits is not None) == public


@pytest.mark.parametrize("environ,message", [
    ({"SENTIMENT_MAX_UPLOAD_MB": "abc"}, "SENTIMENT_MAX_UPLOAD_MB must be a whole number between 1 and 2000; got 'abc'"),
    ({"SENTIMENT_MAX_UPLOAD_MB": "0"}, "SENTIMENT_MAX_UPLOAD_MB must be between 1 and 2000"),
    ({"SENTIMENT_MAX_UPLOAD_MB": "nan"}, "SENTIMENT_MAX_UPLOAD_MB must be a whole number"),
    ({"SENTIMENT_PUBLIC": "maybe"}, "SENTIMENT_PUBLIC must be 1 or 0"),
    ({"SENTIMENT_MAX_RUN_SECONDS": "5"}, "SENTIMENT_MAX_RUN_SECONDS must be between 10 and 86400; got '5'"),
    ({"SENTIMENT_MAX_RUN_SECONDS": "inf"}, "SENTIMENT_MAX_RUN_SECONDS must be a whole number"),
])
def test_bad_settings_are_one_sentence(environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)
    assert Settings.from_env({"SENTIMENT_MAX_UPLOAD_MB": " 5 "}).max_upload_mb == 5


def test_a_public_run_stops_at_the_wall_clock_the_environment_sets():
    assert Settings.from_env({"SPACE_ID": "a/b"}).run_limits.max_seconds == 300
    limits = Settings.from_env({"SPACE_ID": "a/b", "SENTIMENT_MAX_RUN_SECONDS": "60"}).run_limits
    assert limits.max_seconds == 60 and "A public run stops after 60 s." in limits.apply(TrainConfig(), ModelConfig())[2]


def test_a_bad_setting_stops_the_app_at_start_up_with_its_sentence(monkeypatch):
    import app

    monkeypatch.setenv("SENTIMENT_MAX_UPLOAD_MB", "abc")
    with pytest.raises(SystemExit) as stopped:
        app.main([])
    assert str(stopped.value) == "error: SENTIMENT_MAX_UPLOAD_MB must be a whole number between 1 and 2000; got 'abc'"


def test_the_public_time_limit_stops_a_run_still_preparing_its_data(tmp_path, monkeypatch):
    from sentiment.data.sets import BUNDLED_SAMPLE
    from sentiment.ui.jobs import JobRunner
    from sentiment.ui.train import start_run

    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path))  # nothing cached: the whole sample must be read
    jobs = JobRunner()
    start_run(jobs, TrainConfig(epochs=1), ModelConfig(hidden_size=16, embedding_dim=16), BUNDLED_SAMPLE,
              tmp_path / "never.pt", max_seconds=0.2)
    jobs.join(timeout=60)
    job = jobs.snapshot("training")
    assert job.status == "stopped" and "stopped while preparing the data" in job.message, job.message
    assert job.progress.step is None and not (tmp_path / "never.pt").exists()


def test_a_server_says_what_it_turns_off_and_why():
    assert Settings.from_env({}).restrictions() == []
    public = Settings.from_env({"SPACE_ID": "someone/lab"}).restrictions()
    assert len(public) == 2 and public[0].startswith("Uploads are off: a public demo takes no files")
    assert "hidden size at most 256" in public[1] and "bidirectional off" in public[1]
    private = Settings.from_env({"SENTIMENT_ALLOW_TRAINING": "0", "SENTIMENT_ALLOW_UPLOADS": "0"}).restrictions()
    assert [sentence.split(":")[0] for sentence in private] == ["Training is off on this server", "Uploads are off"]
    assert "SENTIMENT_ALLOW_UPLOADS=0" in private[1]
