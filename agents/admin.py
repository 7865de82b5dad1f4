"""Nothing of the runtime is in Django admin. Sessions, tool calls, handoffs and alerts carry
parameters and results that only reviewers and security staff may see, in their own pages
(/approvals/, /handoffs/, /alerts/, /audit/); Django admin is for the admins, who have
neither role, and shows only the governance registry (governance/admin.py)."""
