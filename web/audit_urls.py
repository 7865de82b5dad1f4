from django.urls import path, re_path

from web import audit_views as views

app_name = "audit"

urlpatterns = [
    path("audit/", views.browse, name="browse"),
    path("audit/events/<int:seq>/", views.event_detail, name="event"),
    path("audit/sessions/<str:session>/", views.session_timeline, name="timeline"),
    path("audit/verify/", views.verify_start, name="verify"),
    path("audit/verify/<int:pk>/", views.verify_status, name="verify_status"),
    re_path(r"^audit/export\.(?P<fmt>jsonl|csv)$", views.export, name="export"),
]
