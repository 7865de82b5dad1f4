from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config import views
from governance.oidc import StepUpAuthenticationRequestView

admin.site.site_header = "Warden administration"
admin.site.login = RedirectView.as_view(url="/accounts/login/", query_string=True)  # one login page

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("oidc/authenticate/", StepUpAuthenticationRequestView.as_view(), name="oidc_authentication_init"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("approvals.urls")),
    path("", include("audit.urls")),
    path("admin/", admin.site.urls),
]
