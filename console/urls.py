from django.urls import path

from console import provisioning_views, views

app_name = "console"

urlpatterns = [
    path("reviews/", views.access_reviews, name="access_reviews"),
    path("reviews/<int:pk>/confirm/", views.access_review_decide, {"decision": "confirm"}, name="review_confirm"),
    path("reviews/<int:pk>/revoke/", views.access_review_decide, {"decision": "revoke"}, name="review_revoke"),
    path("workflows/<str:name>/versions/", views.workflow_versions, name="workflow_versions"),
    path("provisioning/", provisioning_views.overview, name="provisioning"),
    path("provisioning/agents/", provisioning_views.agent_create, name="agent_create"),
    path("provisioning/agents/<str:name>/<str:status>/", provisioning_views.agent_status, name="agent_status"),
    path("provisioning/workflows/<str:name>/", provisioning_views.workflow_edit, name="workflow_edit"),
    path("provisioning/context-rules/<str:data_type>/", provisioning_views.context_rule, name="context_rule"),
    path("provisioning/credentials/<str:name>/<str:op>/", provisioning_views.credential, name="credential"),
    path("provisioning/policy/", provisioning_views.policy, name="policy"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<int:pk>/", views.campaign, name="campaign"),
    path("campaigns/<int:pk>/items/<int:item_pk>/decide/", views.campaign_decide, name="campaign_decide"),
    path("campaigns/<int:pk>/report/", views.campaign_report, name="campaign_report"),
    path("campaigns/<int:pk>/report.csv", views.campaign_report, {"fmt": "csv"}, name="campaign_report_csv"),
]
