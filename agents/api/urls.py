from django.urls import path

from agents.api import views

urlpatterns = [
    path("sessions/", views.SessionsView.as_view(), name="api-sessions"),
    path("sessions/<uuid:pk>/end", views.SessionEndView.as_view(), name="api-session-end"),
    path("authorize", views.AuthorizeView.as_view(), name="api-authorize"),
    path("actions/<uuid:pk>", views.ActionView.as_view(), name="api-action"),
    path("actions/<uuid:pk>/result", views.ActionResultView.as_view(), name="api-action-result"),
    path("audit/events", views.AuditEventsView.as_view(), name="api-audit-events"),
]
