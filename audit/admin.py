"""The audit trail is not in Django admin: compliance and security read it at /audit/ (and
through the API), and admins, who have Django admin, have no audit role."""
