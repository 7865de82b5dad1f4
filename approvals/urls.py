from django.urls import path

from approvals import ciba_views, views

app_name = "approvals"

urlpatterns = [
    path("approvals/", views.queue, name="queue"),
    path("approvals/rows/", views.queue_rows, name="queue_rows"),
    path("approvals/history/", views.history, name="history"),
    path("approvals/<uuid:pk>/ciba/", ciba_views.start, name="ciba_start"),
    path("approvals/<uuid:pk>/ciba/panel/", ciba_views.panel, name="ciba_panel"),
    path("approvals/<uuid:pk>/", views.detail, name="detail"),
    path("approvals/<uuid:pk>/approve/", views.decide, {"decision": "approve"}, name="approve"),
    path("approvals/<uuid:pk>/reject/", views.decide, {"decision": "reject"}, name="reject"),
    path("stepup/replay/<str:replay_id>/", views.replay, name="replay"),
    path("handoffs/", views.handoffs, name="handoffs"),
    path("handoffs/<int:pk>/", views.handoff_detail, name="handoff"),
    path("handoffs/<int:pk>/claim/", views.handoff_claim, name="handoff_claim"),
    path("handoffs/<int:pk>/resolve/", views.handoff_resolve, name="handoff_resolve"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert"),
    path("alerts/<int:pk>/suspend-agent/", views.alert_suspend_agent, name="alert_suspend_agent"),
    path("alerts/<int:pk>/<str:status>/", views.alert_update, name="alert_update"),
]
