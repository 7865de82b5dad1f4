"""The test settings, with the URLs of bench/serving_urls.py (for bench/api_load.py)."""

from config.test_settings import *  # noqa: F403

ROOT_URLCONF = "bench.serving_urls"
