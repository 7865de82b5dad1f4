from django.urls import path

from approvals import provisioning_views as admin_views
from approvals import views

app_name = "approvals"

urlpatterns = [
    path("approvals/", views.queue, name="queue"),
    path("approvals/rows/", views.queue_rows, name="queue_rows"),
    path("approvals/<uuid:pk>/", views.detail, name="detail"),
    path("approvals/<uuid:pk>/approve/", views.decide, {"decision": "approve"}, name="approve"),
    path("approvals/<uuid:pk>/reject/", views.decide, {"decision": "reject"}, name="reject"),
    path("handoffs/", views.handoffs, name="handoffs"),
    path("handoffs/<int:pk>/", views.handoff_detail, name="handoff"),
    path("handoffs/<int:pk>/claim/", views.handoff_claim, name="handoff_claim"),
    path("handoffs/<int:pk>/resolve/", views.handoff_resolve, name="handoff_resolve"),
    path("alerts/", views.alerts, name="alerts"),
    path("reviews/", views.access_reviews, name="access_reviews"),
    path("reviews/<int:pk>/confirm/", views.access_review_decide, {"decision": "confirm"}, name="review_confirm"),
    path("reviews/<int:pk>/revoke/", views.access_review_decide, {"decision": "revoke"}, name="review_revoke"),
    path("workflows/<str:name>/versions/", views.workflow_versions, name="workflow_versions"),
    path("provisioning/", admin_views.overview, name="provisioning"),
    path("provisioning/agents/", admin_views.agent_create, name="agent_create"),
    path("provisioning/agents/<str:name>/<str:status>/", admin_views.agent_status, name="agent_status"),
    path("provisioning/workflows/<str:name>/", admin_views.workflow_edit, name="workflow_edit"),
    path("provisioning/context-rules/<str:data_type>/", admin_views.context_rule, name="context_rule"),
    path("provisioning/credentials/<str:name>/<str:op>/", admin_views.credential, name="credential"),
    path("provisioning/policy/", admin_views.policy, name="policy"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<int:pk>/", views.campaign, name="campaign"),
    path("campaigns/<int:pk>/items/<int:item_pk>/decide/", views.campaign_decide, name="campaign_decide"),
    path("campaigns/<int:pk>/report/", views.campaign_report, name="campaign_report"),
    path("campaigns/<int:pk>/report.csv", views.campaign_report, {"fmt": "csv"}, name="campaign_report_csv"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert"),
    path("alerts/<int:pk>/suspend-agent/", views.alert_suspend_agent, name="alert_suspend_agent"),
    path("alerts/<int:pk>/<str:status>/", views.alert_update, name="alert_update"),
]
