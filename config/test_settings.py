"""Settings for the test suite: production-safe defaults (DEBUG off) with throwaway keys.

Only the keys are filled in here; everything else comes from config.settings and the
environment, so the suite runs against whatever DATABASE_URL and broker it is given.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("WARDEN_AUDIT_KEY", "test-audit-key-not-for-production")
os.environ.setdefault("WARDEN_SECRET_KEYS", "7kM3p8jkQm1Ot2q2VgqsbFvQ0wq8N9z7dY0mUqjB0tE=")
os.environ.setdefault("WARDEN_CHECKPOINT_KEY", "ZDQ1ZjE2YjM5YTg0NGM4ZmE3ZTlhYzE0NjE3ZDI5MGE=")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("WARDEN_DATA_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from config.settings import *  # noqa: F403
