from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance.oidc import StepUpAuthenticationRequestView
from web import ops, views

admin.site.site_header = "Warden administration"
admin.site.login = RedirectView.as_view(url="/accounts/login/", query_string=True)  # one login page

urlpatterns = [
    # First: Django tries the patterns in order on every request, and the decision API and the
    # probes are the hot paths (no other pattern matches these prefixes).
    path("api/v1/", include("agents.api.urls")),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("", views.home, name="home"),
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("oidc/authenticate/", StepUpAuthenticationRequestView.as_view(), name="oidc_authentication_init"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("approvals.urls")),
    path("", include("console.urls")),
    path("", include("web.audit_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("", include("demo_systems.urls")),  # the demo systems' record pages (record links)
    path("admin/", admin.site.urls),
]

handler404 = "web.views.not_found"
handler500 = "web.views.server_error"
