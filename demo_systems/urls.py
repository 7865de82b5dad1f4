from django.urls import path

from demo_systems import views

app_name = "demo_systems"

urlpatterns = [
    path("demo/crm/customers/<str:pk>/", views.customer, name="customer"),
    path("demo/helpdesk/tickets/<str:pk>/", views.ticket, name="ticket"),
]
